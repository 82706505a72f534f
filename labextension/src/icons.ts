import { LabIcon } from '@jupyterlab/ui-components';

/**
 * A git line with an upward arrow: "this workspace is pushed to git".
 */
const syncSvg = `<svg xmlns="http://www.w3.org/2000/svg" width="16" viewBox="0 0 24 24">
  <g class="jp-icon3" fill="#616161">
    <circle cx="6" cy="6" r="2.5"/>
    <circle cx="6" cy="18" r="2.5"/>
    <rect x="5" y="8" width="2" height="8"/>
    <path d="M17 3l-4.5 5H16v5.5c0 1.4-1.1 2.5-2.5 2.5H9v2h4.5c2.5 0 4.5-2 4.5-4.5V8h3.5z"/>
  </g>
</svg>`;

/**
 * The Git Sync icon, also used by the settings editor
 * (`jupyter-gitsync:sync`).
 */
export const gitSyncIcon = new LabIcon({
  name: 'jupyter-gitsync:sync',
  svgstr: syncSvg
});

/**
 * A clock with a backward arrow: "earlier states of this file".
 */
const historySvg = `<svg xmlns="http://www.w3.org/2000/svg" width="16" viewBox="0 0 24 24">
  <g class="jp-icon3" fill="#616161">
    <path d="M13 3a9 9 0 0 0-9 9H1l3.9 3.9.1.1L9 12H6a7 7 0 1 1 2.05 4.95l-1.42 1.42A9 9 0 1 0 13 3z"/>
    <path d="M12 8v5l4.25 2.52.77-1.28-3.52-2.09V8z"/>
  </g>
</svg>`;

/**
 * The History panel's icon in the right sidebar.
 */
export const historyIcon = new LabIcon({
  name: 'jupyter-gitsync:history',
  svgstr: historySvg
});

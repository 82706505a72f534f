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

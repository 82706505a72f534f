const jestJupyterLab = require('@jupyterlab/testing/lib/jest-config');

const esModules = [
  '@codemirror',
  '@jupyter/ydoc',
  '@jupyter/react-components',
  '@jupyter/web-components',
  '@jupyterlab/',
  '@microsoft',
  'exenv-es6',
  'lib0',
  'nanoid',
  'vscode-ws-jsonrpc',
  'y-protocols',
  'y-websocket',
  'yjs'
].join('|');

const baseConfig = jestJupyterLab(__dirname);

module.exports = {
  ...baseConfig,
  automock: false,
  collectCoverageFrom: ['labextension/src/**/*.{ts,tsx}', '!**/*.d.ts'],
  coverageReporters: ['text-summary'],
  reporters: ['default'],
  // deadlines, not sleeps: a cold, busy CI machine compiles lazily loaded modules slowly
  testTimeout: 60000,
  roots: ['<rootDir>/labextension'],
  testRegex: 'labextension/test/.*\\.spec\\.tsx?$',
  transformIgnorePatterns: [`/node_modules/(?!${esModules}).+`]
};

import js from '@eslint/js';
import { defineConfig } from 'eslint/config';
import tseslint from 'typescript-eslint';
import prettierRecommended from 'eslint-plugin-prettier/recommended';
import globals from 'globals';
import jupyterPlugin from '@jupyter/eslint-plugin';

export default defineConfig([
  {
    ignores: [
      'node_modules',
      'lib',
      'dist',
      'coverage',
      '**/*.js',
      '*.config.js',
      '**/*.d.ts',
      '.venv*',
      '.yarn',
      'jupyter_gitsync',
      'tests',
      '**/__tests__'
    ]
  },
  js.configs.recommended,
  tseslint.configs.recommended,
  {
    plugins: {
      jupyter: jupyterPlugin
    }
  },
  jupyterPlugin.configs.recommended,
  {
    files: ['**/*.ts', '**/*.tsx'],
    languageOptions: {
      globals: {
        ...globals.browser,
        ...globals.es2015,
        ...globals.node
      },
      parserOptions: {
        project: 'tsconfig.json',
        sourceType: 'module'
      }
    },
    rules: {
      '@typescript-eslint/naming-convention': [
        'error',
        {
          selector: 'interface',
          format: ['PascalCase'],
          custom: {
            regex: '^I[A-Z]',
            match: true
          }
        }
      ],
      '@typescript-eslint/no-unused-vars': ['warn', { args: 'none' }],
      '@typescript-eslint/no-explicit-any': 'off',
      '@typescript-eslint/no-namespace': 'off',
      '@typescript-eslint/no-use-before-define': 'off',
      '@typescript-eslint/quotes': [
        'error',
        'single',
        { avoidEscape: true, allowTemplateLiterals: false }
      ],
      // The plugin builds its model, status bar item, popover, notifier and
      // unload guard while activating (the status item must exist at
      // startup), so these small local modules are needed at once; the
      // dialogs are imported lazily.
      'jupyter/prefer-lazy-imports': [
        'warn',
        {
          ignoreImports: [
            './api',
            './commands',
            './labels',
            './model',
            './notify',
            './remote',
            './settings',
            './unload',
            './widgets/badge',
            './widgets/details',
            './widgets/statusitem'
          ]
        }
      ],
      curly: ['error', 'all'],
      eqeqeq: 'error',
      'prefer-arrow-callback': 'error'
    }
  },
  {
    // Unit tests are type-checked with their own config (jest types).
    files: ['labextension/test/**/*.ts', 'labextension/test/**/*.tsx'],
    languageOptions: {
      globals: { ...globals.jest },
      parserOptions: { project: 'tsconfig.test.json' }
    },
    rules: {
      // Tests make throw-away models, notifiers and commands.
      'jupyter/command-described-by': 'off',
      'jupyter/prefer-lazy-imports': 'off',
      'jupyter/require-disposable-ownership': 'off'
    }
  },
  prettierRecommended
]);

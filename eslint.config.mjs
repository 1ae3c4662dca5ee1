// ESLint, flat config: the recommended rules of ESLint and typescript-eslint, without type
// information (fast: no program is built). Import cycles are checked by dependency-cruiser
// (.dependency-cruiser.cjs); both run as `npm run lint`.
import js from '@eslint/js';
import globals from 'globals';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/', 'dist.tmp-*/', 'node_modules/', 'data/', 'bench/results/', 'test-output/', '.tmp/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { ...globals.node } },
    linterOptions: { reportUnusedDisableDirectives: 'error' },
    rules: {
      // `_name` marks a parameter or binding kept on purpose (a callback's signature, a rest sibling).
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none', ignoreRestSiblings: true }],
      // Loose JSON and fastify's generics: allowed where a comment says why (eslint-disable-line … -- why).
      '@typescript-eslint/no-explicit-any': 'error',
      // The product's code says with types what is set when (the wiring is split per mode).
      '@typescript-eslint/no-non-null-assertion': 'error',
    },
  },
  {
    // Tests assert what they expect and may then say so with `!`: a wrong guess fails the test.
    files: ['test/**/*.ts'],
    rules: { '@typescript-eslint/no-non-null-assertion': 'off' },
  },
  {
    // The pages' scripts run in the browser, as ES modules.
    files: ['src/web/**/*.js'],
    languageOptions: { globals: { ...globals.browser }, sourceType: 'module' },
  },
  {
    // uPlot is loaded by its own <script> before the dashboard's.
    files: ['src/web/admin.js'],
    languageOptions: { globals: { uPlot: 'readonly' } },
  },
);

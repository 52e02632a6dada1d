import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import publicEntry from './eslint-rules/public-entry.mjs';

export default tseslint.config(
  { ignores: ['node_modules/**', 'dist/**', 'coverage/**', '.test-artifacts/**', 'media/audit.js'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: {
      globals: {
        process: 'readonly',
        console: 'readonly',
        Buffer: 'readonly',
        setTimeout: 'readonly',
        clearTimeout: 'readonly',
        setInterval: 'readonly',
        clearInterval: 'readonly',
        setImmediate: 'readonly',
        URL: 'readonly',
        fetch: 'readonly',
        __dirname: 'readonly',
        require: 'readonly',
        module: 'writable',
      },
    },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-restricted-imports': [
        'error',
        { paths: [{ name: 'vscode', message: 'Only src/extension/ may import vscode.' }] },
      ],
    },
  },
  {
    // Components talk to each other through their public entries (ARCHITECTURE.md, layers).
    files: ['src/**/*.ts', 'media/**/*.ts'],
    plugins: { mcpw: { rules: { 'public-entry': publicEntry } } },
    rules: { 'mcpw/public-entry': 'error' },
  },
  {
    files: ['src/extension/**', 'test/electron/suite/**'],
    rules: { 'no-restricted-imports': 'off' },
  },
  {
    // Tests poke at untyped JSON responses.
    files: ['test/**'],
    rules: { '@typescript-eslint/no-explicit-any': 'off' },
  },
  {
    files: ['**/*.js', '**/*.mjs'],
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
);

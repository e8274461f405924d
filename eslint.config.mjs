// ESLint flat config. Besides typescript-eslint's recommended rules it enforces service
// ownership: a subgraph may not import another subgraph's code (or the gateway's); shared code
// lives in packages/ and holds no data.
import { readdirSync } from 'node:fs';
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

const subgraphs = readdirSync(new URL('./subgraphs', import.meta.url), { withFileTypes: true })
  .filter((d) => d.isDirectory())
  .map((d) => d.name);

const ownership = subgraphs.map((name) => {
  const others = subgraphs.filter((other) => other !== name);
  return {
    files: [`subgraphs/${name}/**/*.ts`],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            ...others.map((other) => ({
              group: [`@shop/${other}`, `@shop/${other}/*`, `**/subgraphs/${other}/**`, `../../${other}/**`, `../../../${other}/**`],
              message: `${name} may not import ${other}: each subgraph owns its data and code; talk to it through the gateway or events, or move shared code to packages/.`,
            })),
            {
              group: ['@shop/gateway', '@shop/gateway/*', '**/gateway/src/**'],
              message: 'a subgraph may not import the gateway.',
            },
          ],
        },
      ],
    },
  };
});

export default tseslint.config(
  { ignores: ['**/node_modules/**', '**/generated/**', '**/dist/**', '.data/**', 'bench/results/**', 'docs/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { process: 'readonly', console: 'readonly', Buffer: 'readonly', __dirname: 'readonly', require: 'readonly', module: 'writable', URL: 'readonly', fetch: 'readonly', setTimeout: 'readonly', clearTimeout: 'readonly', setInterval: 'readonly', clearInterval: 'readonly', AbortController: 'readonly', Headers: 'readonly' } },
    rules: {
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/no-require-imports': 'off',
    },
  },
  ...ownership,
  {
    // One error model (#12): resolvers throw DomainError and the server's formatError codes it, so
    // a resolver that wraps itself in an error mapper is a second mapping to keep in step.
    files: ['subgraphs/*/src/resolvers.ts', 'subgraphs/*/src/resolvers/**/*.ts'],
    rules: {
      'no-restricted-syntax': [
        'error',
        {
          selector: 'CallExpression[callee.name=/^(coded|orderCoded|toGraphQLError)$/]',
          message: 'resolvers throw DomainError and never wrap themselves: the subgraph factory\'s formatError maps it to the client\'s code, field and message.',
        },
      ],
    },
  },
);

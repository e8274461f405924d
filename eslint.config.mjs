// ESLint flat config. Besides typescript-eslint's recommended rules it enforces service
// ownership: a subgraph may not import another subgraph's code (or the gateway's); shared code
// lives in packages/ and holds no data.
import { readdirSync } from 'node:fs';
import js from '@eslint/js';
import { createTypeScriptImportResolver } from 'eslint-import-resolver-typescript';
import importX from 'eslint-plugin-import-x';
import tseslint from 'typescript-eslint';

const subgraphs = readdirSync(new URL('./subgraphs', import.meta.url), { withFileTypes: true })
  .filter((d) => d.isDirectory())
  .map((d) => d.name);

// Packages have clear faces (#12): each workspace package's exports map offers its root only, so
// any subpath of `@shop/<package>` (its src/, its data layer) is another package's insides, and
// so is a relative path into another workspace folder.
const deepImports = [
  {
    group: ['@shop/*/*', '@shop/*/*/**'],
    message:
      "import a workspace package by its name only: its exports map is its public face. Export what you need from the package's root.",
  },
  {
    group: [
      '**/packages/*/src/**',
      '**/subgraphs/*/src/**',
      '../../*/src/**',
      '../../../*/src/**',
      '../gateway/src/**',
      '../../gateway/src/**',
      '../../../gateway/src/**',
    ],
    message: 'do not reach into another workspace folder by a relative path: import the package by its name.',
  },
];

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
            ...deepImports,
          ],
        },
      ],
    },
  };
});

export default tseslint.config(
  {
    ignores: [
      '**/node_modules/**',
      '**/generated/**',
      '**/dist/**',
      '.data/**',
      'bench/results/**',
      'docs/**',
      'test/fixtures/lint-cycle/**',
    ],
  },
  js.configs.recommended,
  // Type-aware (#12): the rules that need the type checker (floating and misused promises, unsafe
  // any flows, awaiting non-promises), over one program of every file (tsconfig.all.json): the
  // project service built one per workspace and re-read the shared packages for each.
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: { parserOptions: { project: './tsconfig.all.json', tsconfigRootDir: import.meta.dirname } },
  },
  {
    languageOptions: {
      globals: {
        process: 'readonly',
        console: 'readonly',
        Buffer: 'readonly',
        __dirname: 'readonly',
        require: 'readonly',
        module: 'writable',
        URL: 'readonly',
        fetch: 'readonly',
        setTimeout: 'readonly',
        clearTimeout: 'readonly',
        setInterval: 'readonly',
        clearInterval: 'readonly',
        AbortController: 'readonly',
        Headers: 'readonly',
      },
    },
    rules: {
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/no-require-imports': 'off',
      'no-restricted-imports': ['error', { patterns: deepImports }],
      // Promises must be awaited or handled, and never passed where a void callback is expected.
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      // Off: Apollo's plugin hooks, our store and cache interfaces and many resolvers are async by
      // contract; an async function without an await there is the interface, not a mistake.
      '@typescript-eslint/require-await': 'off',
      // Off: graphql-js's Kind enum against the string literal types of its own AST nodes
      // (node.kind === Kind.FIELD) reads as two unrelated enums to this rule.
      '@typescript-eslint/no-unsafe-enum-comparison': 'off',
    },
  },
  {
    // jest's asymmetric matchers (expect.any, expect.objectContaining) are typed `any`, and
    // expect(obj.method) passes methods unbound on purpose.
    files: ['**/test/**/*.ts', 'test/**/*.ts'],
    rules: {
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/unbound-method': 'off',
    },
  },
  {
    // No import cycles (#12), followed across workspace packages through their TypeScript sources.
    plugins: { 'import-x': importX },
    settings: {
      ...importX.flatConfigs.typescript.settings,
      'import-x/resolver': undefined,
      'import-x/resolver-next': [createTypeScriptImportResolver({ project: ['tsconfig.base.json'] })],
      // Workspace packages are linked into node_modules: follow them as our own code, not as external modules.
      'import-x/external-module-folders': [],
    },
    rules: { 'import-x/no-cycle': 'error' },
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
          message:
            "resolvers throw DomainError and never wrap themselves: the subgraph factory's formatError maps it to the client's code, field and message.",
        },
      ],
    },
  },
  // Plain JavaScript, and the probes the rule tests lint from stdin (no file on disk, so in no
  // tsconfig), have no type information: last, so no rule set above asks for it.
  { files: ['**/*.js', '**/*.mjs', '**/*.cjs', '**/__*_probe__.ts'], ...tseslint.configs.disableTypeChecked },
);

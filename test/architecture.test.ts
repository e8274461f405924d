import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { lint } from './lib/eslint';

// Packages with clear faces (#12): every workspace package exposes an exports map, imports only
// the packages it declares, never another package's insides, and no import cycle exists; ESLint
// enforces the last two (no-restricted-imports, import-x/no-cycle) and this suite shows the rules fire.
const root = join(__dirname, '..');
const workspaceDirs = ['packages', 'subgraphs']
  .flatMap((dir) =>
    readdirSync(join(root, dir))
      .filter((name) => statSync(join(root, dir, name)).isDirectory())
      .map((name) => join(dir, name)),
  )
  .concat('gateway', 'stack');

interface PackageJson {
  name: string;
  exports?: Record<string, string>;
  dependencies?: Record<string, string>;
  devDependencies?: Record<string, string>;
}
const packageOf = (dir: string) => JSON.parse(readFileSync(join(root, dir, 'package.json'), 'utf8')) as PackageJson;

function sourceFiles(dir: string): string[] {
  if (!statSync(dir, { throwIfNoEntry: false })?.isDirectory()) return [];
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return entry.name === 'generated' || entry.name === 'node_modules' ? [] : sourceFiles(path);
    return /\.(ts|js)$/.test(entry.name) ? [path] : [];
  });
}

describe('workspace packages', () => {
  it.each(workspaceDirs)('%s has an exports map offering its root only', (dir) => {
    expect(Object.keys(packageOf(dir).exports ?? {})).toEqual(['.']);
  });

  it.each(workspaceDirs)('%s declares every workspace package it imports', (dir) => {
    const pkg = packageOf(dir);
    const declared = new Set([pkg.name, ...Object.keys(pkg.dependencies ?? {}), ...Object.keys(pkg.devDependencies ?? {})]);
    const imported = new Set<string>();
    for (const file of [...sourceFiles(join(root, dir, 'src')), ...sourceFiles(join(root, dir, 'test'))]) {
      for (const match of readFileSync(file, 'utf8').matchAll(/(?:from|import\(|require\()\s*'(@shop\/[a-z-]+)/g))
        imported.add(match[1] as string);
    }
    expect([...imported].filter((name) => !declared.has(name)).sort()).toEqual([]);
  });

  it('depend on each other without a cycle, dev-dependencies included', () => {
    // Turbo orders tasks by this graph; a cycle (a package testing itself through a harness that
    // depends on it) would leave no valid order.
    const edges = new Map(
      workspaceDirs.map((dir) => {
        const pkg = packageOf(dir);
        const deps = Object.keys({ ...pkg.dependencies, ...pkg.devDependencies }).filter((name) => name.startsWith('@shop/'));
        return [pkg.name, deps] as const;
      }),
    );
    const cycles: string[] = [];
    const state = new Map<string, 'open' | 'done'>();
    const visit = (name: string, path: string[]) => {
      if (state.get(name) === 'done') return;
      if (state.get(name) === 'open') {
        cycles.push([...path.slice(path.indexOf(name)), name].join(' -> '));
        return;
      }
      state.set(name, 'open');
      for (const dep of edges.get(name) ?? []) visit(dep, [...path, name]);
      state.set(name, 'done');
    };
    for (const name of edges.keys()) visit(name, []);
    expect(cycles).toEqual([]);
  });
});

describe('lint rules', () => {
  it('refuses a subpath of another package and a relative path into another workspace folder', () => {
    const filePath = join(root, 'packages', 'cache', 'src', '__deep_import_probe__.ts');
    const code = [
      "import { a } from '@shop/store/src/index';",
      "import { b } from '../../server/src/http';",
      "import { c } from '@shop/store';",
      'export const all = [a, b, c];',
      '',
    ].join('\n');
    const [result] = lint(['--stdin', '--stdin-filename', filePath], code);
    const refused = (result?.messages ?? []).filter((m) => m.ruleId === 'no-restricted-imports');
    expect(refused).toHaveLength(2);
  });

  it('detects an import cycle', () => {
    const results = lint(['--no-ignore', join(root, 'test', 'fixtures', 'lint-cycle')], undefined, { cycles: true });
    const cycles = results.flatMap((r) => r.messages.filter((m) => m.ruleId === 'import-x/no-cycle'));
    expect(cycles.length).toBeGreaterThanOrEqual(2);
  });
});

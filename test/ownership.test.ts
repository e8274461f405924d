import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { lint } from './lib/eslint';

const root = join(__dirname, '..');
const subgraphs = readdirSync(join(root, 'subgraphs')).filter((n) => statSync(join(root, 'subgraphs', n)).isDirectory());

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return entry.name === 'generated' ? [] : sourceFiles(path);
    return entry.name.endsWith('.ts') ? [path] : [];
  });
}

describe('service ownership', () => {
  it.each(subgraphs)('%s may not import another subgraph or the gateway (lint rule)', (name) => {
    const other = subgraphs.find((n) => n !== name)!;
    const filePath = join(root, 'subgraphs', name, 'src', '__ownership_probe__.ts');
    const code = [
      `import { x } from '@shop/${other}';`,
      `import { y } from '../../${other}/src/data/repository';`,
      `import { z } from '@shop/gateway';`,
      'export const all = [x, y, z];',
    ].join('\n');
    const [result] = lint(['--stdin', '--stdin-filename', filePath], code);
    const messages = (result?.messages ?? []).filter((m) => m.ruleId === 'no-restricted-imports');
    // Each of the three imports is refused (the relative one also as a reach into another workspace folder).
    expect([...new Set(messages.map((m) => m.line))].sort()).toEqual([1, 2, 3]);
    expect(messages[0]?.message).toContain(`${name} may not import ${other}`);
  });

  it('holds in the real sources: no subgraph names another service in an import', () => {
    const results = lint(subgraphs.map((n) => `subgraphs/${n}/src`));
    const violations = results.flatMap((r) =>
      r.messages.filter((m) => m.ruleId === 'no-restricted-imports').map((m) => `${relative(root, r.filePath)}:${m.line} ${m.message}`),
    );
    expect(violations).toEqual([]);
  });

  it.each(subgraphs)('%s opens only its own store', (name) => {
    const others = subgraphs.filter((n) => n !== name);
    for (const file of sourceFiles(join(root, 'subgraphs', name, 'src'))) {
      const text = readFileSync(file, 'utf8');
      for (const other of others) {
        // Another service's database variable, data directory or config would mean reaching into its store.
        expect(text).not.toContain(`${other.toUpperCase()}_DATABASE_URL`);
        expect(text).not.toMatch(new RegExp(`loadSubgraphConfig\\(\\s*'${other}'`));
        expect(text).not.toMatch(new RegExp(`['"/]${other}\\.sqlite`));
      }
    }
  });
});

import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { lint } from './lib/eslint';

// One error model (#12): resolvers throw DomainError bare; the lint rule keeps error mappers out.
const root = join(__dirname, '..');

describe('resolvers never wrap themselves in an error mapper', () => {
  it('the lint rule refuses coded(...) in a resolvers file', () => {
    const code = [
      'declare const coded: <T>(fn: () => Promise<T>) => Promise<T>;',
      'export const resolvers = { Query: { a: () => coded(async () => 1) } };',
    ].join('\n');
    // A probe's name (not on disk, so linted from stdin without type information) under resolvers/.
    const [result] = lint(['--stdin', '--stdin-filename', join(root, 'subgraphs/orders/src/resolvers/__error_model_probe__.ts')], code);
    const messages = (result?.messages ?? []).filter((m) => m.ruleId === 'no-restricted-syntax');
    expect(messages).toHaveLength(1);
    expect(messages[0]?.message).toContain('resolvers throw DomainError');
  });

  it('holds in the real resolvers', () => {
    const subgraphs = readdirSync(join(root, 'subgraphs'), { withFileTypes: true }).filter((d) => d.isDirectory());
    const results = lint(subgraphs.map((d) => `subgraphs/${d.name}/src`));
    expect(results.flatMap((r) => r.messages.filter((m) => m.ruleId === 'no-restricted-syntax'))).toEqual([]);
  });
});

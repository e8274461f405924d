import { execFileSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { composeFromConfig } from '@shop/composition';
import { formatReport, runSchemaCheck } from '../src';

const FIXTURE = path.join(__dirname, 'fixtures', 'shop');

/** A scratch copy of the fixture shop with its composed supergraph saved as the base. */
async function workspace() {
  const dir = mkdtempSync(path.join(tmpdir(), 'schema-check-'));
  cpSync(FIXTURE, dir, { recursive: true });
  const composed = await composeFromConfig(path.join(dir, 'supergraph.yaml'));
  if (composed.errors) throw new Error('fixture does not compose');
  const baseFile = path.join(dir, 'base.graphql');
  writeFileSync(baseFile, composed.supergraphSdl);
  const edit = (file: string, from: string | RegExp, to: string) => {
    const full = path.join(dir, file);
    const before = readFileSync(full, 'utf8');
    const after = before.replace(from, to);
    if (after === before) throw new Error(`edit of ${file} changed nothing`);
    writeFileSync(full, after);
  };
  const check = (extra: { allowBreaking?: boolean } = {}) =>
    runSchemaCheck({ config: path.join(dir, 'supergraph.yaml'), base: { file: baseFile }, ...extra });
  return { dir, edit, check, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

describe('schema check', () => {
  let ws: Awaited<ReturnType<typeof workspace>>;
  beforeEach(async () => {
    ws = await workspace();
  });
  afterEach(() => ws.cleanup());

  it('passes an unchanged schema, with every operation checked', async () => {
    const report = await ws.check();
    expect(report.ok).toBe(true);
    expect(report.changes).toEqual([]);
    expect(report.operations.checked).toBe(2);
    expect(formatReport(report)).toContain('PASS');
  });

  it('calls an added field safe and passes', async () => {
    ws.edit('catalog.graphql', '  price: Int!\n', '  price: Int!\n  weight: Int\n');
    const report = await ws.check();
    expect(report.ok).toBe(true);
    expect(report.changes).toEqual([expect.objectContaining({ criticality: 'SAFE', coordinate: 'Product.weight', type: 'FIELD_ADDED' })]);
    expect(report.subgraphChanges).toEqual([]); // a file base has no subgraph SDLs to compare
  });

  it('fails a removed field that an operation uses, naming the operation and the field', async () => {
    ws.edit('catalog.graphql', '  description: String!\n', '');
    const report = await ws.check();
    expect(report.ok).toBe(false);
    expect(report.operations.problems).toEqual([
      expect.objectContaining({
        operation: 'ProductPage',
        coordinate: 'Product.description',
        file: expect.stringContaining('ProductPage.graphql'),
      }),
    ]);
    const text = formatReport(report);
    expect(text).toContain('ProductPage');
    expect(text).toContain('Product.description');
    // Even --allow-breaking does not excuse an operation that no longer validates.
    expect((await ws.check({ allowBreaking: true })).ok).toBe(false);
  });

  it('reports a removed unused field as breaking and fails unless approved', async () => {
    ws.edit('catalog.graphql', '  legacyCode: String\n', '');
    const report = await ws.check();
    expect(report.ok).toBe(false);
    expect(report.operations.problems).toEqual([]);
    expect(report.changes).toEqual([
      expect.objectContaining({ criticality: 'BREAKING', coordinate: 'Product.legacyCode', type: 'FIELD_REMOVED' }),
    ]);
    expect(report.failures.join('\n')).toContain('Product.legacyCode');

    expect((await ws.check({ allowBreaking: true })).ok).toBe(true);

    writeFileSync(
      path.join(ws.dir, 'schema-approvals.yaml'),
      'approvals:\n  - coordinate: Product.legacyCode\n    reason: no client has read it since 2023\n',
    );
    const approved = await ws.check();
    expect(approved.ok).toBe(true);
    expect(approved.changes[0]?.approved).toEqual({ reason: 'no client has read it since 2023' });
  });

  it('rejects an approval without a reason', async () => {
    ws.edit('catalog.graphql', '  legacyCode: String\n', '');
    writeFileSync(path.join(ws.dir, 'schema-approvals.yaml'), 'approvals:\n  - coordinate: Product.legacyCode\n    reason: ""\n');
    await expect(ws.check()).rejects.toThrow(/reason/);
  });

  it('calls a nullable argument made non-null breaking', async () => {
    ws.edit('catalog.graphql', 'category: String)', 'category: String!)');
    const report = await ws.check();
    expect(report.ok).toBe(false);
    expect(report.changes).toEqual([
      expect.objectContaining({ criticality: 'BREAKING', coordinate: 'Query.products.category', type: 'FIELD_ARGUMENT_TYPE_CHANGED' }),
    ]);
    expect(report.operations.problems[0]?.operation).toBe('Listing');
  });

  it('fails a @key on a field that does not exist, naming the subgraph', async () => {
    ws.edit('reviews.graphql', 'type Review @key(fields: "id")', 'type Review @key(fields: "uuid")');
    const report = await ws.check();
    expect(report.ok).toBe(false);
    expect(report.composition.ok).toBe(false);
    expect(report.composition.errors[0]?.locations.map((l) => l.subgraph)).toContain('reviews');
    expect(report.failures[0]).toMatch(/composition: \[KEY_INVALID_FIELDS\] reviews Review/);
  });

  it('fails a type defined in two subgraphs without @shareable, naming both', async () => {
    ws.edit('catalog.graphql', 'type Query {', 'type Money {\n  amount: Int!\n  currency: String!\n}\n\ntype Query {\n  cheapest: Money');
    ws.edit(
      'reviews.graphql',
      'type Product @key',
      'type Money {\n  amount: Int!\n  currency: String!\n}\n\ntype Query {\n  averagePrice: Money\n}\n\ntype Product @key',
    );
    const report = await ws.check();
    expect(report.composition.ok).toBe(false);
    const problem = report.composition.errors.find((e) => e.code === 'INVALID_FIELD_SHARING');
    expect(problem?.locations.map((l) => l.subgraph).sort()).toEqual(['catalog', 'reviews']);
  });

  it('by default compares with the committed supergraph at the merge base with main, and diffs subgraph SDLs', async () => {
    const git = (...args: string[]) => execFileSync('git', args, { cwd: ws.dir, stdio: 'pipe' });
    git('init', '-q', '-b', 'main');
    writeFileSync(path.join(ws.dir, 'supergraph.graphql'), readFileSync(path.join(ws.dir, 'base.graphql')));
    git('add', '-A');
    git('-c', 'user.email=ci@example.com', '-c', 'user.name=ci', 'commit', '-qm', 'base');
    git('checkout', '-q', '-b', 'feature');
    ws.edit('catalog.graphql', '  legacyCode: String\n', '');
    const report = await runSchemaCheck({ config: path.join(ws.dir, 'supergraph.yaml') });
    expect(report.base?.description).toMatch(/supergraph\.graphql at merge base with main/);
    expect(report.ok).toBe(false);
    expect(report.subgraphChanges).toEqual([
      expect.objectContaining({ subgraph: 'catalog', coordinate: 'Product.legacyCode', criticality: 'BREAKING' }),
    ]);
  });
});

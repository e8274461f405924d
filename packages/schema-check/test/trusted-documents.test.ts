// The schema check's trusted documents step: every document in the manifest must validate against
// the new schema, and the manifest must be what the operations build (`npm run documents`).
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { composeFromConfig } from '@shop/composition';
import { type PersistedQueryManifest, buildManifest, manifestText } from '@shop/composition';
import { formatReport, runSchemaCheck } from '../src';

const FIXTURE = path.join(__dirname, 'fixtures', 'shop');

let dir: string;
let baseFile: string;
const manifestFile = () => path.join(dir, 'operations', 'trusted-documents.json');
const check = () => runSchemaCheck({ config: path.join(dir, 'supergraph.yaml'), base: { file: baseFile } });
const edit = (file: string, from: string, to: string) => {
  const full = path.join(dir, file);
  const before = readFileSync(full, 'utf8');
  if (!before.includes(from)) throw new Error(`edit of ${file} changed nothing`);
  writeFileSync(full, before.replace(from, to));
};
const writeManifest = async () => writeFileSync(manifestFile(), manifestText(await buildManifest(path.join(dir, 'operations'))));

beforeEach(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'schema-check-documents-'));
  cpSync(FIXTURE, dir, { recursive: true });
  const composed = await composeFromConfig(path.join(dir, 'supergraph.yaml'));
  if (composed.errors) throw new Error('fixture does not compose');
  baseFile = path.join(dir, 'base.graphql');
  writeFileSync(baseFile, composed.supergraphSdl);
  await writeManifest();
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('schema check: trusted documents', () => {
  it('passes a current manifest whose documents all validate', async () => {
    const report = await check();
    expect(report.failures).toEqual([]);
    expect(report.documents).toEqual({ file: expect.stringContaining('trusted-documents.json'), checked: 2, problems: [], stale: [] });
    expect(formatReport(report)).toMatch(/Trusted documents: 2 in .*trusted-documents\.json, 0 failing, current/);
  });

  it('fails a document the new schema no longer serves, naming the operation and the field', async () => {
    // The operation file is fixed along with the schema, but the manifest still holds the old
    // document: clients holding its id would get errors.
    edit('catalog.graphql', '  description: String!\n', '');
    edit('operations/ProductPage.graphql', '    description\n', '');
    const report = await check();
    expect(report.ok).toBe(false);
    expect(report.operations.problems).toEqual([]);
    expect(report.documents.problems).toEqual([
      expect.objectContaining({
        operation: 'ProductPage',
        coordinate: 'Product.description',
        file: expect.stringContaining('trusted-documents.json'),
      }),
    ]);
    expect(report.documents.stale).toEqual(['ProductPage has changed since the manifest was built']);
    expect(report.failures.join('\n')).toMatch(/trusted document ProductPage .* no longer validates/);
  });

  it('fails a stale manifest, saying what changed and what to run', async () => {
    writeFileSync(path.join(dir, 'operations', 'Cheap.graphql'), 'query Cheap { products(first: 1) { price } }\n');
    edit('operations/Listing.graphql', '    price\n', '');
    const report = await check();
    expect(report.ok).toBe(false);
    expect(report.documents.problems).toEqual([]);
    expect(report.documents.stale.sort()).toEqual([
      'Cheap is missing from the manifest',
      'Listing has changed since the manifest was built',
    ]);
    expect(report.failures.join('\n')).toContain('run `npm run documents`');

    await writeManifest();
    expect((await check()).ok).toBe(true);
  });

  it('fails a manifest entry that no operation builds any more', async () => {
    const manifest = JSON.parse(readFileSync(manifestFile(), 'utf8')) as PersistedQueryManifest;
    const body = 'query Old {\n  products(first: 1) {\n    id\n  }\n}';
    manifest.operations.push({ id: 'old', name: 'Old', type: 'query', body });
    writeFileSync(manifestFile(), manifestText(manifest));
    const report = await check();
    expect(report.documents.stale).toEqual(['Old is in the manifest but not in the operations']);
    expect(report.ok).toBe(false);
  });

  it('fails an invalid manifest with its message, and only notes a missing one', async () => {
    writeFileSync(manifestFile(), '{"format":"apollo-persisted-query-manifest","version":2,"operations":[]}');
    const invalid = await check();
    expect(invalid.ok).toBe(false);
    expect(invalid.failures.join('\n')).toMatch(/trusted documents: .*not a persisted query manifest[^]*version/);

    rmSync(manifestFile());
    const missing = await check();
    expect(missing.ok).toBe(true);
    expect(missing.documents.file).toBeNull();
    expect(missing.notes.join('\n')).toContain('no trusted documents manifest');
  });
});

import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { buildSubgraphSchema } from '@apollo/subgraph';
import { type Change, CriticalityLevel, diff } from '@graphql-inspector/core';
import { type DocumentNode, type GraphQLSchema, Kind, type OperationDefinitionNode, parse, validate } from 'graphql';
import YAML from 'yaml';
import { z } from 'zod';
import {
  type CompositionProblem,
  SUPERGRAPH_FEATURES,
  apiSchemaOf,
  composeFromConfig,
  describeCompositionError,
  describeCompositionHint,
} from '@shop/composition';
import { MANIFEST_FILE_NAME, type PersistedQueryManifest, buildManifest, loadManifest, manifestText } from '@shop/composition';

/** Where the base schema comes from. */
export type BaseSpec =
  /** A composed supergraph file. Subgraph SDLs cannot be compared against a file. */
  | { file: string }
  /** A git revision: its committed supergraph.graphql and subgraph schema files. */
  | { ref: string }
  /** The committed supergraph.graphql at the merge base of HEAD with `main` (the default). */
  | { mergeBaseWith: string };

export interface SchemaCheckOptions {
  /** The rover-format supergraph.yaml listing the subgraphs. */
  config: string;
  /** @default { mergeBaseWith: 'main' } */
  base?: BaseSpec;
  /** The folder of client operations (`.graphql` files). @default `<config dir>/operations` */
  operationsDir?: string;
  /** Breaking changes accepted on purpose, with a reason. @default `<config dir>/schema-approvals.yaml` */
  approvalsFile?: string;
  /** Report breaking changes but do not fail on them. @default false */
  allowBreaking?: boolean;
  /**
   * The trusted documents manifest (`npm run documents`): each document must validate against the
   * new schema and the manifest must be what the operations build. A missing file is a note.
   * @default `<operations dir>/trusted-documents.json`
   */
  manifestFile?: string;
}

export type Criticality = 'BREAKING' | 'DANGEROUS' | 'SAFE';

/** One change between the base and the new schema. */
export interface SchemaChange {
  criticality: Criticality;
  /** The schema coordinate, e.g. `Product.description` or `Query.user.id` (an argument). */
  coordinate: string;
  message: string;
  /** GraphQL Inspector's change type, e.g. FIELD_REMOVED. */
  type: string;
  /** Set when an approvals entry accepts this breaking change. */
  approved?: { reason: string };
}

export interface SubgraphChange extends SchemaChange {
  subgraph: string;
}

export interface OperationProblem {
  file: string;
  /** The operation's name, or `(anonymous)`. */
  operation: string;
  message: string;
  /** The field the problem is about, when the message names one. */
  coordinate?: string;
}

export interface SchemaCheckReport {
  ok: boolean;
  config: string;
  subgraphs: string[];
  composition: { ok: boolean; errors: CompositionProblem[]; hints: CompositionProblem[] };
  /** What the new schema was compared with; null when there is no base (a first version). */
  base: { description: string } | null;
  /** Changes to the API schema: what clients see. These decide pass or fail. */
  changes: SchemaChange[];
  /** Changes to each subgraph's SDL, for the owning team's information. */
  subgraphChanges: SubgraphChange[];
  operations: { checked: number; files: string[]; problems: OperationProblem[] };
  /**
   * The trusted documents manifest: `file` is null when there is none; `problems` are documents
   * that do not validate against the new schema; `stale` lists how it differs from what the
   * operations build (empty when current).
   */
  documents: { file: string | null; checked: number; problems: OperationProblem[]; stale: string[] };
  /** Why the check failed, one line each; empty when it passed. */
  failures: string[];
  /** Things worth knowing that do not fail the check (no base found, ...). */
  notes: string[];
}

const approvalsSchema = z.object({
  approvals: z
    .array(
      z.object({ coordinate: z.string().min(1), reason: z.string().min(1, 'every approval needs a reason'), type: z.string().optional() }),
    )
    .default([]),
});
export type Approvals = z.infer<typeof approvalsSchema>['approvals'];

function readApprovals(file: string): Approvals {
  if (!existsSync(file)) return [];
  const parsed = approvalsSchema.safeParse(YAML.parse(readFileSync(file, 'utf8')) ?? {});
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new Error(`${file}: ${issue?.path.join('.') ?? ''}: ${issue?.message ?? 'invalid'}`);
  }
  return parsed.data.approvals;
}

const level: Record<CriticalityLevel, Criticality> = {
  [CriticalityLevel.Breaking]: 'BREAKING',
  [CriticalityLevel.Dangerous]: 'DANGEROUS',
  [CriticalityLevel.NonBreaking]: 'SAFE',
};

function toChange(change: Change, approvals: Approvals): SchemaChange {
  const coordinate = change.path ?? '(schema)';
  const result: SchemaChange = {
    criticality: level[change.criticality.level],
    coordinate,
    message: change.message,
    type: String(change.type as string),
  };
  if (result.criticality === 'BREAKING') {
    const approval = approvals.find((a) => a.coordinate === coordinate && (a.type === undefined || a.type === change.type));
    if (approval) result.approved = { reason: approval.reason };
  }
  return result;
}

// The API schema of a supergraph (security specs accepted) is @shop/composition's.
export { SUPERGRAPH_FEATURES, apiSchemaOf };

function git(cwd: string, args: string[]): string | undefined {
  try {
    return execFileSync('git', args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], maxBuffer: 64 * 1024 * 1024 });
  } catch {
    return undefined;
  }
}

interface ResolvedBase {
  description: string;
  supergraphSdl: string;
  /** Reads a file of the base revision, by path relative to the repository root. */
  readFile?: (relativePath: string) => string | undefined;
  repoRoot?: string;
}

function resolveBase(spec: BaseSpec, configDir: string, notes: string[]): ResolvedBase | null {
  if ('file' in spec) {
    if (!existsSync(spec.file)) throw new Error(`base file not found: ${spec.file}`);
    return { description: `file ${spec.file}`, supergraphSdl: readFileSync(spec.file, 'utf8') };
  }
  const repoRoot = git(configDir, ['rev-parse', '--show-toplevel'])?.trim();
  if (!repoRoot) {
    notes.push('not in a git repository: no base to compare with');
    return null;
  }
  let rev: string;
  let description: string;
  if ('ref' in spec) {
    const resolved = git(repoRoot, ['rev-parse', '--verify', `${spec.ref}^{commit}`])?.trim();
    if (!resolved) throw new Error(`base ref not found: ${spec.ref}`);
    rev = resolved;
    description = `${spec.ref} (${rev.slice(0, 10)})`;
  } else {
    const mergeBase = git(repoRoot, ['merge-base', 'HEAD', spec.mergeBaseWith])?.trim();
    const fallback = mergeBase ? undefined : git(repoRoot, ['rev-parse', '--verify', 'HEAD^{commit}'])?.trim();
    if (!mergeBase && !fallback) {
      notes.push(`no merge base with ${spec.mergeBaseWith} and no HEAD: no base to compare with`);
      return null;
    }
    if (!mergeBase) notes.push(`no merge base with ${spec.mergeBaseWith}; comparing with HEAD`);
    rev = (mergeBase ?? fallback) as string;
    description = mergeBase ? `merge base with ${spec.mergeBaseWith} (${rev.slice(0, 10)})` : `HEAD (${rev.slice(0, 10)})`;
  }
  const readFile = (relativePath: string) => git(repoRoot, ['show', `${rev}:${relativePath.split(path.sep).join('/')}`]);
  const supergraphPath = path.relative(repoRoot, path.join(configDir, 'supergraph.graphql'));
  const supergraphSdl = readFile(supergraphPath);
  if (supergraphSdl === undefined) {
    notes.push(`${supergraphPath} does not exist at ${description}: nothing to compare with`);
    return null;
  }
  return { description: `${supergraphPath} at ${description}`, supergraphSdl, readFile, repoRoot };
}

const schemaFromSubgraphSdl = (sdl: string) => buildSubgraphSchema({ typeDefs: parse(sdl) });

function operationFiles(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.graphql') || f.endsWith('.gql'))
    .sort()
    .map((f) => path.join(dir, f));
}

const FIELD_IN_MESSAGE = /field "([^"]+)" on type "([^"]+)"/i;

/** Validates every operation document against `schema`; each problem names its operation. */
export function checkOperations(schema: GraphQLSchema, files: string[], shownAs: (file: string) => string): OperationProblem[] {
  const problems: OperationProblem[] = [];
  for (const file of files) {
    let doc: DocumentNode;
    try {
      doc = parse(readFileSync(file, 'utf8'));
    } catch (err) {
      problems.push({ file: shownAs(file), operation: '(unparsable)', message: (err as Error).message });
      continue;
    }
    problems.push(...documentProblems(schema, doc, shownAs(file)));
  }
  return problems;
}

/** The validation errors of one document, each attributed to its operation. */
function documentProblems(schema: GraphQLSchema, doc: DocumentNode, shownFile: string): OperationProblem[] {
  const operations = doc.definitions.filter((d): d is OperationDefinitionNode => d.kind === Kind.OPERATION_DEFINITION);
  return validate(schema, doc).map((error) => {
    const at = error.nodes?.[0]?.loc?.start;
    const op = operations.find((o) => o.loc && at !== undefined && o.loc.start <= at && at < o.loc.end) ?? operations[0];
    const match = FIELD_IN_MESSAGE.exec(error.message);
    return {
      file: shownFile,
      operation: op?.name?.value ?? '(anonymous)',
      message: error.message,
      ...(match ? { coordinate: `${match[2]}.${match[1]}` } : {}),
    };
  });
}

/** How a committed manifest differs from a fresh build, one line per operation. */
function manifestDifferences(committed: PersistedQueryManifest, fresh: PersistedQueryManifest): string[] {
  const before = new Map(committed.operations.map((o) => [o.name, o]));
  const after = new Map(fresh.operations.map((o) => [o.name, o]));
  const lines: string[] = [];
  for (const [name, operation] of after) {
    const old = before.get(name);
    if (!old) lines.push(`${name} is missing from the manifest`);
    else if (old.id !== operation.id || old.body !== operation.body || old.type !== operation.type)
      lines.push(`${name} has changed since the manifest was built`);
  }
  for (const name of before.keys()) if (!after.has(name)) lines.push(`${name} is in the manifest but not in the operations`);
  // Same operations, other bytes (order, layout, a hand edit): still not what the command writes.
  if (lines.length === 0 && manifestText(committed) !== manifestText(fresh)) lines.push('the file is not as `npm run documents` writes it');
  return lines;
}

/**
 * Checks the trusted documents manifest: every document validates against the new schema (a
 * client holding an id must still get an answer), and the manifest is what the operations build.
 */
async function checkManifest(
  schema: GraphQLSchema,
  manifestFile: string,
  operationsDir: string,
  shownAs: (file: string) => string,
  report: SchemaCheckReport,
): Promise<void> {
  const failures = report.failures;
  if (!existsSync(manifestFile)) {
    report.notes.push(`no trusted documents manifest at ${shownAs(manifestFile)}: not checked (npm run documents writes one)`);
    return;
  }
  const shown = shownAs(manifestFile);
  report.documents.file = shown;
  let committed: PersistedQueryManifest;
  try {
    committed = await loadManifest(manifestFile);
  } catch (err) {
    failures.push(`trusted documents: ${(err as Error).message}`);
    return;
  }
  report.documents.checked = committed.operations.length;
  for (const operation of committed.operations) {
    // Bodies parse: loadManifest checked them.
    report.documents.problems.push(
      ...documentProblems(schema, parse(operation.body), shown).map((p) => ({ ...p, operation: operation.name })),
    );
  }
  for (const p of report.documents.problems) failures.push(`trusted document ${p.operation} (${p.file}) no longer validates: ${p.message}`);
  try {
    report.documents.stale = manifestDifferences(committed, await buildManifest(operationsDir));
  } catch (err) {
    failures.push(`trusted documents: cannot build the manifest from the operations: ${(err as Error).message}`);
    return;
  }
  if (report.documents.stale.length > 0) {
    failures.push(`trusted documents: ${shown} is out of date (${report.documents.stale.join('; ')}); run \`npm run documents\``);
  }
}

/**
 * Runs the whole check: composition, API-schema diff against the base (breaking changes fail
 * unless approved or allowed), subgraph SDL diffs (informational), and client operations.
 */
export async function runSchemaCheck(options: SchemaCheckOptions): Promise<SchemaCheckReport> {
  const config = path.resolve(options.config);
  const configDir = path.dirname(config);
  const shownAs = (file: string) => path.relative(process.cwd(), file) || file;
  const notes: string[] = [];
  const failures: string[] = [];
  const approvals = readApprovals(options.approvalsFile ?? path.join(configDir, 'schema-approvals.yaml'));
  const operationsDir = options.operationsDir ?? path.join(configDir, 'operations');
  const opFiles = operationFiles(operationsDir);

  const composed = await composeFromConfig(config);
  notes.push(...composed.warnings);
  const report: SchemaCheckReport = {
    ok: false,
    config: shownAs(config),
    subgraphs: composed.subgraphs.map((s) => s.name),
    composition: {
      ok: !composed.errors,
      errors: (composed.errors ?? []).map(describeCompositionError),
      hints: composed.hints.map(describeCompositionHint),
    },
    base: null,
    changes: [],
    subgraphChanges: [],
    operations: { checked: 0, files: opFiles.map(shownAs), problems: [] },
    documents: { file: null, checked: 0, problems: [], stale: [] },
    failures,
    notes,
  };
  if (composed.errors) {
    for (const e of report.composition.errors) {
      const where = e.locations
        .map((l) => [l.subgraph, l.coordinate].filter(Boolean).join(' '))
        .filter(Boolean)
        .join(', ');
      failures.push(`composition: [${e.code}] ${where ? `${where}: ` : ''}${e.message}`);
    }
    return report;
  }

  const apiSchema = apiSchemaOf(composed.supergraphSdl);
  const base = resolveBase(options.base ?? { mergeBaseWith: 'main' }, configDir, notes);
  if (base) {
    report.base = { description: base.description };
    const baseApi = apiSchemaOf(base.supergraphSdl);
    report.changes = (await diff(baseApi, apiSchema)).map((c) => toChange(c, approvals));
    if (base.readFile && base.repoRoot) {
      for (const subgraph of composed.subgraphs) {
        if (!subgraph.file) continue;
        const old = base.readFile(path.relative(base.repoRoot, subgraph.file));
        if (old === undefined) {
          notes.push(`subgraph ${subgraph.name} is new since the base`);
          continue;
        }
        try {
          const changes = await diff(schemaFromSubgraphSdl(old), schemaFromSubgraphSdl(readFileSync(subgraph.file, 'utf8')));
          report.subgraphChanges.push(...changes.map((c) => ({ subgraph: subgraph.name, ...toChange(c, approvals) })));
        } catch (err) {
          notes.push(`subgraph ${subgraph.name}: cannot compare with the base: ${(err as Error).message}`);
        }
      }
    }
    for (const change of report.changes) {
      if (change.criticality !== 'BREAKING' || change.approved) continue;
      if (options.allowBreaking) notes.push(`breaking change allowed by --allow-breaking: ${change.coordinate}`);
      else failures.push(`breaking change: ${change.coordinate}: ${change.message}`);
    }
  }

  report.operations.problems = checkOperations(apiSchema, opFiles, shownAs);
  report.operations.checked = opFiles.length;
  for (const p of report.operations.problems) {
    failures.push(`operation ${p.operation} (${p.file}) no longer validates: ${p.message}`);
  }
  await checkManifest(apiSchema, options.manifestFile ?? path.join(operationsDir, MANIFEST_FILE_NAME), operationsDir, shownAs, report);
  report.ok = failures.length === 0;
  return report;
}

const mark: Record<Criticality, string> = { BREAKING: 'x', DANGEROUS: '!', SAFE: '+' };

/** The report as text for a terminal or a CI log. */
export function formatReport(report: SchemaCheckReport): string {
  const lines: string[] = [];
  const count = (c: Criticality) => report.changes.filter((x) => x.criticality === c).length;
  lines.push(`Schema check of ${report.config} (${report.subgraphs.join(', ')})`);
  lines.push('');
  if (report.composition.ok) {
    lines.push(`Composition: ok, ${report.composition.hints.length} hint(s)`);
  } else {
    lines.push(`Composition: FAILED, ${report.composition.errors.length} error(s)`);
  }
  for (const e of report.composition.errors) lines.push(`  x ${formatProblem(e)}`);
  for (const h of report.composition.hints) lines.push(`  hint ${formatProblem(h)}`);
  if (report.composition.ok) {
    lines.push('');
    lines.push(report.base ? `Against ${report.base.description}:` : 'No base schema to compare with.');
    if (report.base) {
      lines.push(
        `API schema: ${report.changes.length} change(s): ${count('BREAKING')} breaking, ${count('DANGEROUS')} dangerous, ${count('SAFE')} safe`,
      );
      for (const c of report.changes) {
        const approved = c.approved ? ` (approved: ${c.approved.reason})` : '';
        lines.push(`  ${mark[c.criticality]} ${c.criticality.padEnd(9)} ${c.coordinate}: ${c.message}${approved}`);
      }
      if (report.subgraphChanges.length > 0) {
        lines.push(`Subgraph SDL: ${report.subgraphChanges.length} change(s)`);
        for (const c of report.subgraphChanges)
          lines.push(`  ${mark[c.criticality]} ${c.subgraph}: ${c.criticality} ${c.coordinate}: ${c.message}`);
      }
    }
    const failing = new Set(report.operations.problems.map((p) => `${p.file}#${p.operation}`)).size;
    lines.push(`Operations: ${report.operations.checked} file(s) checked, ${failing} operation(s) failing`);
    for (const p of report.operations.problems) {
      lines.push(`  x ${p.operation} (${p.file})${p.coordinate ? ` uses ${p.coordinate}` : ''}: ${p.message}`);
    }
    if (report.documents.file) {
      const failingDocuments = new Set(report.documents.problems.map((p) => p.operation)).size;
      const current = report.documents.stale.length === 0 ? 'current' : 'OUT OF DATE';
      lines.push(`Trusted documents: ${report.documents.checked} in ${report.documents.file}, ${failingDocuments} failing, ${current}`);
      for (const p of report.documents.problems)
        lines.push(`  x ${p.operation}${p.coordinate ? ` uses ${p.coordinate}` : ''}: ${p.message}`);
      for (const s of report.documents.stale) lines.push(`  x ${s}`);
    }
  }
  for (const n of report.notes) lines.push(`note: ${n}`);
  lines.push('');
  lines.push(report.ok ? 'PASS' : `FAIL: ${report.failures.length} problem(s)`);
  for (const f of report.failures) lines.push(`  - ${f}`);
  return `${lines.join('\n')}\n`;
}

function formatProblem(p: CompositionProblem): string {
  const where = p.locations
    .map((l) =>
      [l.subgraph, l.coordinate, l.file && l.line ? `${path.relative(process.cwd(), l.file)}:${l.line}:${l.column ?? 1}` : undefined]
        .filter(Boolean)
        .join(' '),
    )
    .join('; ');
  return `[${p.code}] ${where ? `${where}: ` : ''}${p.message}`;
}

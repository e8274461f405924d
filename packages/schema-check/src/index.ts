import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { Supergraph } from '@apollo/federation-internals';
import { buildSubgraphSchema } from '@apollo/subgraph';
import { type Change, CriticalityLevel, diff } from '@graphql-inspector/core';
import { type DocumentNode, type GraphQLSchema, Kind, type OperationDefinitionNode, parse, validate } from 'graphql';
import YAML from 'yaml';
import { z } from 'zod';
import {
  type CompositionProblem,
  composeFromConfig,
  describeCompositionError,
  describeCompositionHint,
} from '@shop/gateway/src/supergraph';

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
  /** Why the check failed, one line each; empty when it passed. */
  failures: string[];
  /** Things worth knowing that do not fail the check (no base found, ...). */
  notes: string[];
}

const approvalsSchema = z.object({
  approvals: z
    .array(z.object({ coordinate: z.string().min(1), reason: z.string().min(1, 'every approval needs a reason'), type: z.string().optional() }))
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
  const result: SchemaChange = { criticality: level[change.criticality.level], coordinate, message: change.message, type: change.type };
  if (result.criticality === 'BREAKING') {
    const approval = approvals.find((a) => a.coordinate === coordinate && (a.type === undefined || a.type === change.type));
    if (approval) result.approved = { reason: approval.reason };
  }
  return result;
}

/** The schema clients see: the supergraph without federation machinery and @inaccessible parts. */
export function apiSchemaOf(supergraphSdl: string): GraphQLSchema {
  return Supergraph.build(supergraphSdl).apiSchema().toGraphQLJSSchema();
}

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
    const operations = doc.definitions.filter((d): d is OperationDefinitionNode => d.kind === Kind.OPERATION_DEFINITION);
    for (const error of validate(schema, doc)) {
      const at = error.nodes?.[0]?.loc?.start;
      const op = operations.find((o) => o.loc && at !== undefined && o.loc.start <= at && at < o.loc.end) ?? operations[0];
      const match = FIELD_IN_MESSAGE.exec(error.message);
      problems.push({
        file: shownAs(file),
        operation: op?.name?.value ?? '(anonymous)',
        message: error.message,
        ...(match ? { coordinate: `${match[2]}.${match[1]}` } : {}),
      });
    }
  }
  return problems;
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
  const opFiles = operationFiles(options.operationsDir ?? path.join(configDir, 'operations'));

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
    failures,
    notes,
  };
  if (composed.errors) {
    for (const e of report.composition.errors) {
      const where = e.locations.map((l) => [l.subgraph, l.coordinate].filter(Boolean).join(' ')).filter(Boolean).join(', ');
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
      lines.push(`API schema: ${report.changes.length} change(s): ${count('BREAKING')} breaking, ${count('DANGEROUS')} dangerous, ${count('SAFE')} safe`);
      for (const c of report.changes) {
        const approved = c.approved ? ` (approved: ${c.approved.reason})` : '';
        lines.push(`  ${mark[c.criticality]} ${c.criticality.padEnd(9)} ${c.coordinate}: ${c.message}${approved}`);
      }
      if (report.subgraphChanges.length > 0) {
        lines.push(`Subgraph SDL: ${report.subgraphChanges.length} change(s)`);
        for (const c of report.subgraphChanges) lines.push(`  ${mark[c.criticality]} ${c.subgraph}: ${c.criticality} ${c.coordinate}: ${c.message}`);
      }
    }
    const failing = new Set(report.operations.problems.map((p) => `${p.file}#${p.operation}`)).size;
    lines.push(`Operations: ${report.operations.checked} file(s) checked, ${failing} operation(s) failing`);
    for (const p of report.operations.problems) {
      lines.push(`  x ${p.operation} (${p.file})${p.coordinate ? ` uses ${p.coordinate}` : ''}: ${p.message}`);
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
    .map((l) => [l.subgraph, l.coordinate, l.file && l.line ? `${path.relative(process.cwd(), l.file)}:${l.line}:${l.column ?? 1}` : undefined].filter(Boolean).join(' '))
    .join('; ');
  return `[${p.code}] ${where ? `${where}: ` : ''}${p.message}`;
}

// The trusted-documents manifest of the client operations: Apollo's persisted query list format
// (what Apollo Router and GraphOS safelisting read, and what GraphQL Hive's app deployments hold),
// built from operations/ by `npm run documents`, validated by the gateway at start-up and by the
// schema check. The gateway's plugin that enforces it is in gateway/src/trusted-documents.ts.
import { createHash } from 'node:crypto';
import { readFile, readdir } from 'node:fs/promises';
import path from 'node:path';
import { type DocumentNode, type FragmentDefinitionNode, Kind, type OperationDefinitionNode, parse, print, visit } from 'graphql';
import { z } from 'zod';
/** The `format` field of Apollo's persisted query list. */
export const MANIFEST_FORMAT = 'apollo-persisted-query-manifest';
/** The manifest's file name, in the operations folder it is built from. */
export const MANIFEST_FILE_NAME = 'trusted-documents.json';

/** One operation of the manifest. */
export interface ManifestOperation {
  /** The id clients send: the SHA-256 (hex) of `body` in manifests this repository builds. */
  id: string;
  /** The operation's name; logs and metrics identify operations by it. */
  name: string;
  type: 'query' | 'mutation' | 'subscription';
  /** The operation printed with the fragments it uses: exactly what runs. */
  body: string;
}

/** Apollo's persisted query list format (version 1). */
export interface PersistedQueryManifest {
  format: typeof MANIFEST_FORMAT;
  version: 1;
  operations: ManifestOperation[];
}

/** A manifest that cannot be read or is not valid, or operations that cannot be made into one. */
export class TrustedDocumentsError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'TrustedDocumentsError';
  }
}

export const sha256Hex = (text: string): string => createHash('sha256').update(text).digest('hex');

const manifestSchema = z.object({
  format: z.literal(MANIFEST_FORMAT),
  version: z.literal(1),
  operations: z.array(
    z.object({
      id: z.string().min(1),
      name: z.string().min(1),
      type: z.enum(['query', 'mutation', 'subscription']),
      body: z.string().min(1),
    }),
  ),
}) satisfies z.ZodType<PersistedQueryManifest>;

// ---------------------------------------------------------------------------------------------
// Building the manifest from operation files

const byName = (a: { name: string }, b: { name: string }) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);

/** The fragments an operation spreads, directly or through other fragments, sorted by name. */
function fragmentsUsedBy(
  operation: OperationDefinitionNode,
  fragments: ReadonlyMap<string, FragmentDefinitionNode>,
  where: string,
): FragmentDefinitionNode[] {
  const used = new Map<string, FragmentDefinitionNode>();
  const pending: Array<OperationDefinitionNode | FragmentDefinitionNode> = [operation];
  for (let node = pending.pop(); node; node = pending.pop()) {
    visit(node, {
      FragmentSpread(spread) {
        const name = spread.name.value;
        if (used.has(name)) return;
        const fragment = fragments.get(name);
        if (!fragment) throw new TrustedDocumentsError(`${where}: fragment ${name} is not defined in this file`);
        used.set(name, fragment);
        pending.push(fragment);
      },
    });
  }
  return [...used.values()].sort((a, b) => byName({ name: a.name.value }, { name: b.name.value }));
}

/**
 * The manifest entries of one operation file: one per operation, its body the operation printed
 * with the fragments it uses (from the same file, as the schema check and the explorer read each
 * file alone). Printing drops comments and normalises layout, so the id changes only when the
 * operation does. Throws {@link TrustedDocumentsError} naming the file for a syntax error, an
 * anonymous operation, a duplicate or a missing fragment.
 */
export function operationsFromText(text: string, file: string): ManifestOperation[] {
  let document: DocumentNode;
  try {
    document = parse(text);
  } catch (err) {
    throw new TrustedDocumentsError(`${file}: ${(err as Error).message}`, { cause: err });
  }
  const fragments = new Map<string, FragmentDefinitionNode>();
  for (const definition of document.definitions) {
    if (definition.kind !== Kind.FRAGMENT_DEFINITION) continue;
    if (fragments.has(definition.name.value))
      throw new TrustedDocumentsError(`${file}: fragment ${definition.name.value} is defined twice`);
    fragments.set(definition.name.value, definition);
  }
  const operations: ManifestOperation[] = [];
  for (const definition of document.definitions) {
    if (definition.kind !== Kind.OPERATION_DEFINITION) continue;
    const name = definition.name?.value;
    // Logs, metrics and the explorer name operations; an anonymous one could not be told apart.
    if (!name) throw new TrustedDocumentsError(`${file}: every operation needs a name; found an anonymous ${definition.operation}`);
    const body = print({ kind: Kind.DOCUMENT, definitions: [definition, ...fragmentsUsedBy(definition, fragments, file)] });
    operations.push({ id: sha256Hex(body), name, type: definition.operation, body });
  }
  return operations;
}

/**
 * Builds the manifest from every `*.graphql` file in `operationsDir` and its subfolders, the same
 * files the explorer and the schema check read. Operations are sorted by name, so the output
 * depends only on the operations, not on where the files sit. Operation names must be unique.
 */
export async function buildManifest(operationsDir: string): Promise<PersistedQueryManifest> {
  const files = (await readdir(operationsDir, { recursive: true, encoding: 'utf8' })).filter((f) => f.endsWith('.graphql')).sort();
  const seen = new Map<string, string>();
  const operations: ManifestOperation[] = [];
  for (const relative of files) {
    const shown = path.join(path.basename(operationsDir), relative);
    for (const operation of operationsFromText(await readFile(path.join(operationsDir, relative), 'utf8'), shown)) {
      const other = seen.get(operation.name);
      if (other)
        throw new TrustedDocumentsError(`operation ${operation.name} is defined in both ${other} and ${shown}; names must be unique`);
      seen.set(operation.name, shown);
      operations.push(operation);
    }
  }
  return { format: MANIFEST_FORMAT, version: 1, operations: operations.sort(byName) };
}

/** The manifest as written to disk: two-space JSON with a final newline. */
export const manifestText = (manifest: PersistedQueryManifest): string => `${JSON.stringify(manifest, null, 2)}\n`;

// ---------------------------------------------------------------------------------------------
// Reading and validating a manifest

/**
 * Validates a parsed manifest: the format and version, every field of every operation, unique
 * ids, and each body a parsable document holding exactly the one operation its `name` and `type`
 * say. Throws {@link TrustedDocumentsError} naming `source` and every problem found.
 */
export function parseManifest(json: unknown, source: string): PersistedQueryManifest {
  const parsed = manifestSchema.safeParse(json);
  if (!parsed.success) {
    const issues = parsed.error.issues.slice(0, 10).map((i) => `  ${i.path.join('.') || '(root)'}: ${i.message}`);
    throw new TrustedDocumentsError(
      `${source} is not a persisted query manifest (format ${MANIFEST_FORMAT}, version 1):\n${issues.join('\n')}`,
    );
  }
  const problems: string[] = [];
  const ids = new Set<string>();
  parsed.data.operations.forEach((operation, index) => {
    const where = `operations.${index} (${operation.name})`;
    if (ids.has(operation.id)) problems.push(`${where}: id ${operation.id} is used twice`);
    ids.add(operation.id);
    let document: DocumentNode;
    try {
      document = parse(operation.body);
    } catch (err) {
      problems.push(`${where}: body does not parse: ${(err as Error).message}`);
      return;
    }
    const operations = document.definitions.filter((d): d is OperationDefinitionNode => d.kind === Kind.OPERATION_DEFINITION);
    const only = operations.length === 1 ? operations[0] : undefined;
    if (!only) problems.push(`${where}: body holds ${operations.length} operations; expected exactly one`);
    else if (only.name?.value !== operation.name || only.operation !== operation.type) {
      problems.push(
        `${where}: body is ${only.operation} ${only.name?.value ?? '(anonymous)'}, but the entry says ${operation.type} ${operation.name}`,
      );
    }
  });
  if (problems.length > 0) {
    throw new TrustedDocumentsError(`${source} is not a valid persisted query manifest:\n${problems.map((p) => `  ${p}`).join('\n')}`);
  }
  return parsed.data;
}

/** Reads and validates a manifest file; the error names the file and says how to make one. */
export async function loadManifest(file: string): Promise<PersistedQueryManifest> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new TrustedDocumentsError(
      `Cannot read the trusted documents manifest ${file} (${(err as Error).message}); run \`npm run documents\` or set TRUSTED_DOCUMENTS_PATH`,
      { cause: err },
    );
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new TrustedDocumentsError(`The trusted documents manifest ${file} is not JSON: ${(err as Error).message}`, { cause: err });
  }
  return parseManifest(json, `The trusted documents manifest ${file}`);
}

// Trusted documents: the gateway runs only the operations its own clients ship. The list is a
// manifest in Apollo's persisted query list format (what Apollo Router and GraphOS safelisting
// read, and what GraphQL Hive's app deployments hold), built from operations/ by
// `npm run documents`. This module builds and validates that manifest, and provides the Apollo
// Server plugin for the `log` and `enforce` modes (`off` is the plugin's absence).
import { createHash } from 'node:crypto';
import { readFile, readdir } from 'node:fs/promises';
import path from 'node:path';
import type { ApolloServerPlugin, BaseContext, GraphQLRequest, GraphQLRequestListener } from '@apollo/server';
import {
  type DocumentNode,
  type FragmentDefinitionNode,
  GraphQLError,
  Kind,
  type OperationDefinitionNode,
  parse,
  print,
  visit,
} from 'graphql';
import { Counter, type Registry } from 'prom-client';
import { z } from 'zod';
import type { Logger } from '@shop/telemetry';

/** `off`: every request runs, nothing is checked. `log`: every request runs, unknown documents are logged and counted. `enforce`: only listed documents run. */
export type TrustedDocumentsMode = 'off' | 'log' | 'enforce';
export const TRUSTED_DOCUMENTS_MODES = ['off', 'log', 'enforce'] as const satisfies readonly TrustedDocumentsMode[];

/** The code of a request refused in `enforce` mode: its id or its document is not in the list. */
export const PERSISTED_QUERY_NOT_IN_LIST = 'PERSISTED_QUERY_NOT_IN_LIST';
/** The code of a request whose id names a different document than the one it sent (`enforce`). */
export const PERSISTED_QUERY_HASH_MISMATCH = 'PERSISTED_QUERY_HASH_MISMATCH';

/** The `format` field of Apollo's persisted query list. */
export const MANIFEST_FORMAT = 'apollo-persisted-query-manifest';
/** The manifest's file name, in the operations folder it is built from. */
export const MANIFEST_FILE_NAME = 'trusted-documents.json';

/** The gateway's trusted documents setting. */
export interface TrustedDocumentsOptions {
  /**
   * `log` runs everything and logs and counts unknown documents (a rollout step); `enforce` runs
   * only documents in the manifest and turns APQ registration off.
   * @default 'off'
   */
  mode: TrustedDocumentsMode;
  /**
   * The manifest (`npm run documents` writes it), read and validated once at start-up; a bad one
   * fails start-up. Not read when `mode` is `off`.
   * @default '<repo root>/operations/trusted-documents.json' (from the gateway's config)
   */
  path: string;
}

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
    if (fragments.has(definition.name.value)) throw new TrustedDocumentsError(`${file}: fragment ${definition.name.value} is defined twice`);
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
      if (other) throw new TrustedDocumentsError(`operation ${operation.name} is defined in both ${other} and ${shown}; names must be unique`);
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
    throw new TrustedDocumentsError(`${source} is not a persisted query manifest (format ${MANIFEST_FORMAT}, version 1):\n${issues.join('\n')}`);
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
      problems.push(`${where}: body is ${only.operation} ${only.name?.value ?? '(anonymous)'}, but the entry says ${operation.type} ${operation.name}`);
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

/** A manifest indexed for look-ups by id and by the SHA-256 of a document's text. */
export class TrustedDocumentList {
  private readonly ids = new Map<string, ManifestOperation>();
  private readonly hashes = new Map<string, ManifestOperation>();

  constructor(readonly manifest: PersistedQueryManifest) {
    for (const operation of manifest.operations) {
      this.ids.set(operation.id, operation);
      this.hashes.set(sha256Hex(operation.body), operation);
    }
  }

  get size(): number {
    return this.ids.size;
  }

  /**
   * By id. `sha256:<hex>` (the GraphQL-over-HTTP persisted documents form) and a bare hash both
   * find an operation by its body's hash too, for manifests whose ids are not hashes.
   */
  byId(id: string): ManifestOperation | undefined {
    const bare = id.startsWith('sha256:') ? id.slice('sha256:'.length) : id;
    return this.ids.get(bare) ?? this.hashes.get(bare);
  }

  /** By the SHA-256 (hex) of a document's exact text. */
  byHash(hash: string): ManifestOperation | undefined {
    return this.hashes.get(hash);
  }
}

// ---------------------------------------------------------------------------------------------
// The Apollo Server plugin

export interface TrustedDocumentsPluginOptions {
  mode: 'log' | 'enforce';
  documents: TrustedDocumentList;
  /** Where `trusted_documents_total{result}` is registered (once per registry). */
  registry: Registry;
  /** For requests whose context carries no logger of its own. */
  logger: Logger;
  /**
   * Document texts that may run as they are, when every operation in them prints to a manifest
   * entry: the explorer's tabs, which are the operation files themselves, comments included, so
   * their text differs from the printed bodies. Computed once here, never per request.
   * @default []
   */
  alsoTrusted?: readonly string[];
}

/**
 * A constant document that stands in for a refused one. Apollo Server 5 masks an error thrown
 * before `didResolveOperation` (`requestDidStart`, `didResolveSource`, `parsingDidStart`) as a
 * 500 "Internal server error" (`internalExecuteOperation`'s catch); `didResolveOperation` is the
 * first hook whose thrown GraphQLError becomes the response, code and HTTP status included. So a
 * refused request has its document replaced by this one (parsed once, then served from Apollo's
 * document store) and is refused there: what the client sent is never parsed, validated,
 * planned or executed.
 */
const REFUSED_OPERATION_NAME = 'TrustedDocumentRefused';
const REFUSED_DOCUMENT = `query ${REFUSED_OPERATION_NAME} { __typename }`;

/** A client's id as logged and echoed: ids are short, anything longer is cut. */
const clip = (id: string) => (id.length > 80 ? `${id.slice(0, 80)}...` : id);

const persistedQueryExtension = z.object({ sha256Hash: z.string().min(1) });

/** Removes `extensions.persistedQuery` from the request through a copy: the client's parsed body is left alone. */
function withoutPersistedQuery(request: GraphQLRequest): void {
  if (!request.extensions || !('persistedQuery' in request.extensions)) return;
  const rest: Record<string, unknown> = { ...request.extensions };
  delete rest.persistedQuery;
  request.extensions = rest;
}

/**
 * The persisted documents proposal's `documentId`: a top-level field of a POST body, or a query
 * parameter of a GET. Apollo Server does not read it, so it is taken from the HTTP request.
 */
function documentIdOf(request: GraphQLRequest): string | undefined {
  const http = request.http;
  if (!http) return undefined;
  if (http.method === 'GET') return new URLSearchParams(http.search).get('documentId') || undefined;
  const body: unknown = http.body;
  if (typeof body !== 'object' || body === null || !('documentId' in body)) return undefined;
  return typeof body.documentId === 'string' && body.documentId !== '' ? body.documentId : undefined;
}

type Verdict =
  /** No document and no id: Apollo answers BAD_REQUEST as it always does. */
  | { kind: 'none' }
  /** `run` replaces the request's document when it came by id. */
  | { kind: 'known'; run: string | undefined }
  /** `runnable`: something can run in log mode (the sent text, or an APQ hash Apollo may know). */
  | { kind: 'unknown'; hash: string; runnable: boolean }
  | { kind: 'mismatch'; hash: string; id: string };

function trustedDocumentsCounter(registry: Registry): Counter<'result'> {
  const name = 'trusted_documents_total';
  // One per registry: a second gateway on a shared registry (embedded mode, tests) reuses it.
  const existing = registry.getSingleMetric(name);
  if (existing) return existing as Counter<'result'>;
  return new Counter({
    name,
    help: 'GraphQL requests by whether their document is in the trusted documents manifest (known or unknown; unknown ones are refused in enforce mode)',
    labelNames: ['result'],
    registers: [registry],
  });
}

/** Texts whose every operation prints to an entry of `documents`, as the hashes of the texts. */
function trustedTexts(texts: readonly string[], documents: TrustedDocumentList): Set<string> {
  const hashes = new Set<string>();
  for (const text of texts) {
    let operations: ManifestOperation[];
    try {
      operations = operationsFromText(text, 'explorer tab');
    } catch {
      // A tab that does not make a manifest entry is simply not trusted; the explorer still shows it.
      continue;
    }
    if (operations.length > 0 && operations.every((o) => documents.byHash(o.id))) hashes.add(sha256Hex(text));
  }
  return hashes;
}

/**
 * The plugin for `log` and `enforce`. Every decision is made in `requestDidStart`, before Apollo's
 * APQ look-up and before anything is parsed:
 *
 * - by id (`extensions.persistedQuery.sha256Hash`, as Apollo Client's persisted-queries link and
 *   Apollo Router send, or a top-level `documentId`): a listed id runs the manifest's body;
 * - by text: a text whose SHA-256 is a listed body's runs as sent (Apollo Router's rule);
 * - anything else is unknown: refused with `PERSISTED_QUERY_NOT_IN_LIST` (400) in `enforce`;
 *   run, logged (hash and operation name, never the document) and counted in `log`. An unknown
 *   `documentId` has nothing to run, so it is refused in both modes.
 *
 * In `enforce` the gateway also turns Apollo's APQ off, so a client cannot register a document;
 * this plugin removes `extensions.persistedQuery` from the requests it lets through.
 */
export function trustedDocumentsPlugin<TContext extends BaseContext & { logger?: Logger }>(
  options: TrustedDocumentsPluginOptions,
): ApolloServerPlugin<TContext> {
  const { mode, documents } = options;
  const counter = trustedDocumentsCounter(options.registry);
  const alsoTrusted = trustedTexts(options.alsoTrusted ?? [], documents);
  const isKnownText = (hash: string) => documents.byHash(hash) !== undefined || alsoTrusted.has(hash);

  const judge = (request: GraphQLRequest): Verdict => {
    const persisted = persistedQueryExtension.safeParse(request.extensions?.persistedQuery);
    const apqHash = persisted.success ? persisted.data.sha256Hash : undefined;
    const id = apqHash ?? documentIdOf(request);
    const text = typeof request.query === 'string' && request.query !== '' ? request.query : undefined;
    if (text !== undefined) {
      const hash = sha256Hex(text);
      if (id !== undefined) {
        const bare = id.startsWith('sha256:') ? id.slice('sha256:'.length) : id;
        const sameDocument = bare === hash || (documents.byId(id) !== undefined && documents.byId(id) === documents.byHash(hash));
        if (!sameDocument) return { kind: 'mismatch', hash, id: clip(id) };
      }
      return isKnownText(hash) ? { kind: 'known', run: undefined } : { kind: 'unknown', hash, runnable: true };
    }
    if (id !== undefined) {
      const operation = documents.byId(id);
      if (operation) return { kind: 'known', run: operation.body };
      // In log mode APQ is on: an unlisted persistedQuery hash may be in its cache.
      return { kind: 'unknown', hash: clip(id), runnable: apqHash !== undefined };
    }
    return { kind: 'none' };
  };

  const refuse = (request: GraphQLRequest, error: GraphQLError): GraphQLRequestListener<TContext> => {
    request.query = REFUSED_DOCUMENT;
    request.operationName = REFUSED_OPERATION_NAME;
    withoutPersistedQuery(request);
    return {
      async didResolveOperation() {
        throw error;
      },
    };
  };

  return {
    async requestDidStart({ request, contextValue }) {
      const verdict = judge(request);
      if (verdict.kind === 'none') return;
      const logger = contextValue.logger ?? options.logger;
      if (verdict.kind === 'known') {
        counter.inc({ result: 'known' });
        if (verdict.run !== undefined) request.query = verdict.run;
        // Apollo's APQ never sees a request this plugin resolved: in enforce it is off, and a
        // custom manifest id is not the hash APQ would check the body against.
        if (verdict.run !== undefined || mode === 'enforce') withoutPersistedQuery(request);
        return;
      }
      counter.inc({ result: 'unknown' });
      const operationName = request.operationName ?? null;
      if (verdict.kind === 'mismatch') {
        // In log mode Apollo's APQ checks a persistedQuery hash against the text itself.
        if (mode === 'log') return;
        logger.debug({ trustedDocuments: 'mismatch', hash: verdict.hash, id: verdict.id, operationName }, 'request refused: its id and document differ');
        return refuse(
          request,
          new GraphQLError('The document id does not match the document sent.', {
            extensions: { code: PERSISTED_QUERY_HASH_MISMATCH, http: { status: 400 } },
          }),
        );
      }
      const { hash } = verdict;
      if (mode === 'enforce' || !verdict.runnable) {
        logger.debug({ trustedDocuments: 'refused', hash, operationName }, 'request refused: document not in the trusted documents list');
        return refuse(
          request,
          new GraphQLError(
            request.query === undefined || request.query === ''
              ? `No trusted document has the id ${JSON.stringify(hash)}.`
              : 'This document is not in the trusted documents list; send the id of a listed document.',
            { extensions: { code: PERSISTED_QUERY_NOT_IN_LIST, http: { status: 400 } } },
          ),
        );
      }
      return {
        async willSendResponse(requestContext) {
          // Logged at the end, when the operation's name is known if the document parsed.
          // The document itself is never logged: it may be large or carry data.
          logger.warn(
            { trustedDocuments: 'unknown', hash, operationName: requestContext.operationName ?? operationName },
            'document not in the trusted documents list',
          );
        },
      };
    },
  };
}

/** What the gateway installs for a trusted documents setting; `undefined` when it is off. */
export interface TrustedDocumentsLayer<TContext extends BaseContext> {
  mode: 'log' | 'enforce';
  plugin: ApolloServerPlugin<TContext>;
  /** How many documents the manifest lists. */
  size: number;
}

/**
 * Reads the manifest and builds the plugin for `options.mode`; `off` (or no options) is
 * `undefined`: the layer is absent, not switched off inside. Rejects with
 * {@link TrustedDocumentsError} when the manifest is missing or invalid, so the gateway does not
 * start with a list it cannot honour.
 */
export async function createTrustedDocuments<TContext extends BaseContext & { logger?: Logger }>(
  options: TrustedDocumentsOptions | undefined,
  deps: { registry: Registry; logger: Logger; alsoTrusted?: readonly string[] },
): Promise<TrustedDocumentsLayer<TContext> | undefined> {
  if (!options || options.mode === 'off') return undefined;
  const documents = new TrustedDocumentList(await loadManifest(options.path));
  const plugin = trustedDocumentsPlugin<TContext>({ mode: options.mode, documents, ...deps });
  deps.logger.info({ mode: options.mode, manifest: options.path, documents: documents.size }, 'trusted documents');
  return { mode: options.mode, plugin, size: documents.size };
}

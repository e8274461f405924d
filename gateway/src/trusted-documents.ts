// Trusted documents: the gateway runs only the operations its own clients ship. The list is a
// manifest in Apollo's persisted query list format (what Apollo Router and GraphOS safelisting
// read, and what GraphQL Hive's app deployments hold), built from operations/ by
// `npm run documents` (building and validating it is @shop/composition's). This module is the
// Apollo Server plugin for the `log` and `enforce` modes (`off` is the plugin's absence).
import type { ApolloServerPlugin, BaseContext, GraphQLRequest, GraphQLRequestListener } from '@apollo/server';
import { GraphQLError } from 'graphql';
import { type ManifestOperation, type PersistedQueryManifest, loadManifest, operationsFromText, sha256Hex } from '@shop/composition';
import type { Counter, Registry } from 'prom-client';
import { z } from 'zod';
import { type Logger, sharedCounter } from '@shop/telemetry';

/** `off`: every request runs, nothing is checked. `log`: every request runs, unknown documents are logged and counted. `enforce`: only listed documents run. */
export type TrustedDocumentsMode = 'off' | 'log' | 'enforce';
export const TRUSTED_DOCUMENTS_MODES = ['off', 'log', 'enforce'] as const satisfies readonly TrustedDocumentsMode[];

/** The code of a request refused in `enforce` mode: its id or its document is not in the list. */
export const PERSISTED_QUERY_NOT_IN_LIST = 'PERSISTED_QUERY_NOT_IN_LIST';
/** The code of a request whose id names a different document than the one it sent (`enforce`). */
export const PERSISTED_QUERY_HASH_MISMATCH = 'PERSISTED_QUERY_HASH_MISMATCH';

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
  return sharedCounter(
    registry,
    'trusted_documents_total',
    'GraphQL requests by whether their document is in the trusted documents manifest (known or unknown; unknown ones are refused in enforce mode)',
    ['result'],
  );
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
        logger.debug(
          { trustedDocuments: 'mismatch', hash: verdict.hash, id: verdict.id, operationName },
          'request refused: its id and document differ',
        );
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

import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { type CompositionSuccess, composeServices } from '@apollo/composition';
import compositionPackage from '@apollo/composition/package.json';
import { type ASTNode, type DefinitionNode, type DocumentNode, GraphQLError, Source, getLocation, parse } from 'graphql';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';

/** A composition hint: a warning that did not stop composition. */
export type CompositionHint = CompositionSuccess['hints'][number];

/** The @apollo/composition version this repository composes with (rover's `federation_version`). */
export const COMPOSITION_VERSION: string = compositionPackage.version;

/**
 * A subgraph's SDL as parsed for composition. Composition errors keep the AST nodes they are
 * about, and a node's `loc.source` is this object, so an error can be traced back to the
 * subgraph and the file it came from without any other bookkeeping.
 */
export class SubgraphSource extends Source {
  constructor(
    body: string,
    /** Where the SDL came from: a file path, a URL or `<yaml>#<subgraph>` for inline SDL. */
    name: string,
    readonly subgraph: string,
  ) {
    super(body, name);
  }
}

/** Thrown when a supergraph.yaml cannot be read or names a schema that cannot be fetched. */
export class SupergraphConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SupergraphConfigError';
  }
}

// rover's supergraph.yaml: https://www.apollographql.com/docs/rover/commands/supergraphs
// `graphref` schemas need GraphOS and are rejected with a message rather than ignored.
const schemaSource = z.union([
  z.object({ file: z.string().min(1) }),
  z.object({
    subgraph_url: z.url(),
    introspection_headers: z.record(z.string(), z.string()).optional(),
  }),
  z.object({ sdl: z.string().min(1) }),
  z.object({ graphref: z.string(), subgraph: z.string() }),
]);

const roverConfigSchema = z.object({
  federation_version: z.union([z.string(), z.number()]).optional(),
  subgraphs: z.record(
    z.string(),
    z.object({
      routing_url: z.string().optional(),
      schema: schemaSource,
    }),
  ),
});

export type RoverSupergraphConfig = z.infer<typeof roverConfigSchema>;

/** One subgraph as it went into composition. */
export interface ComposedSubgraph {
  name: string;
  /** The URL written into the supergraph's `@join__graph`. */
  routingUrl: string;
  /** The parsed SDL; its `loc.source` is a {@link SubgraphSource}. */
  typeDefs: DocumentNode;
  /** The schema file, when the SDL came from one (watched by the gateway). */
  file?: string;
}

interface ComposeResultBase {
  hints: CompositionHint[];
  /** Problems that did not stop composition, e.g. a `federation_version` other than ours. */
  warnings: string[];
  subgraphs: ComposedSubgraph[];
  /** Every file the result depends on: the yaml and each `schema.file`. */
  files: string[];
}

export interface ComposeSuccess extends ComposeResultBase {
  supergraphSdl: string;
  errors?: undefined;
}

export interface ComposeFailure extends ComposeResultBase {
  supergraphSdl?: undefined;
  /** Composition errors, and syntax errors in a subgraph's SDL (code `INVALID_GRAPHQL`). */
  errors: GraphQLError[];
}

export type ComposeResult = ComposeSuccess | ComposeFailure;

export interface ComposeOptions {
  /** How long to wait for a `subgraph_url` to answer `{ _service { sdl } }`. @default 10_000 */
  fetchTimeoutMs?: number;
}

/** Reads and validates a rover-format supergraph.yaml. */
export async function readSupergraphConfig(yamlPath: string): Promise<RoverSupergraphConfig> {
  let text: string;
  try {
    text = await readFile(yamlPath, 'utf8');
  } catch (err) {
    throw new SupergraphConfigError(`Cannot read supergraph config ${yamlPath}: ${(err as Error).message}`);
  }
  let raw: unknown;
  try {
    raw = parseYaml(text);
  } catch (err) {
    throw new SupergraphConfigError(`${yamlPath} is not valid YAML: ${(err as Error).message}`);
  }
  const result = roverConfigSchema.safeParse(raw);
  if (!result.success) {
    const problems = result.error.issues.map((i) => `  ${i.path.join('.') || '(root)'}: ${i.message}`);
    throw new SupergraphConfigError(`${yamlPath} is not a valid supergraph config:\n${problems.join('\n')}`);
  }
  return result.data;
}

/**
 * rover accepts `2`, `=2.9.3` or `2.9`; we compose with the installed @apollo/composition
 * whatever the pin says, so an exact pin that differs is a warning, and Federation 1 an error.
 */
function checkFederationVersion(version: string | number | undefined, yamlPath: string): string[] {
  if (version === undefined) return [];
  const text = String(version).trim();
  const match = /^=?(\d+)(?:\.(\d+))?(?:\.(\d+))?$/.exec(text);
  if (!match) throw new SupergraphConfigError(`${yamlPath}: federation_version ${JSON.stringify(text)} is not a version`);
  if (match[1] !== '2') {
    throw new SupergraphConfigError(
      `${yamlPath}: federation_version ${text} is not supported; this gateway composes Federation 2 (@apollo/composition ${COMPOSITION_VERSION})`,
    );
  }
  if (text.startsWith('=') && match[3] !== undefined && text.slice(1) !== COMPOSITION_VERSION) {
    return [`federation_version ${text} is pinned, but composing with @apollo/composition ${COMPOSITION_VERSION}`];
  }
  return [];
}

async function fetchSubgraphSdl(
  name: string,
  url: string,
  headers: Record<string, string> | undefined,
  timeoutMs: number,
): Promise<string> {
  let body: unknown;
  try {
    const response = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: JSON.stringify({ query: 'query __ApolloGetServiceDefinition__ { _service { sdl } }' }),
      signal: AbortSignal.timeout(timeoutMs),
    });
    if (!response.ok) throw new Error(`HTTP ${response.status} ${response.statusText}`);
    body = await response.json();
  } catch (err) {
    throw new SupergraphConfigError(`Subgraph "${name}": cannot fetch its SDL from ${url}: ${(err as Error).message}`);
  }
  const sdl = z.object({ data: z.object({ _service: z.object({ sdl: z.string() }) }) }).safeParse(body);
  if (!sdl.success) {
    throw new SupergraphConfigError(`Subgraph "${name}": ${url} did not answer { _service { sdl } }: ${JSON.stringify(body)}`);
  }
  return sdl.data.data._service.sdl;
}

/**
 * Reads a rover-format supergraph.yaml and composes it with @apollo/composition, the way
 * `rover supergraph compose` would (rover itself cannot run here: it downloads its composition
 * plugin at run time). `schema.file` paths are relative to the yaml's directory. Subgraphs are
 * composed in the yaml's order, so the same inputs always give the same supergraph text.
 *
 * Throws {@link SupergraphConfigError} when the yaml or a schema cannot be read; composition
 * errors are returned, not thrown, so callers can print all of them.
 */
export async function composeFromConfig(yamlPath: string, options: ComposeOptions = {}): Promise<ComposeResult> {
  const absoluteYaml = path.resolve(yamlPath);
  const config = await readSupergraphConfig(absoluteYaml);
  const warnings = checkFederationVersion(config.federation_version, absoluteYaml);
  const dir = path.dirname(absoluteYaml);
  const timeoutMs = options.fetchTimeoutMs ?? 10_000;
  const files = [absoluteYaml];
  const names = Object.keys(config.subgraphs);
  if (names.length === 0) throw new SupergraphConfigError(`${absoluteYaml}: lists no subgraphs`);

  // Fetch in parallel (subgraph_url) but keep the yaml's order for composition.
  const loaded = await Promise.all(
    Object.entries(config.subgraphs).map(async ([name, entry]) => {
      const schema = entry.schema;
      if ('graphref' in schema) {
        throw new SupergraphConfigError(`Subgraph "${name}": schema.graphref needs GraphOS; use schema.file or schema.subgraph_url`);
      }
      if ('file' in schema) {
        const file = path.resolve(dir, schema.file);
        files.push(file);
        let sdl: string;
        try {
          sdl = await readFile(file, 'utf8');
        } catch (err) {
          throw new SupergraphConfigError(`Subgraph "${name}": cannot read schema file ${file}: ${(err as Error).message}`);
        }
        return { name, routingUrl: entry.routing_url, sdl, sourceName: file, file };
      }
      if ('subgraph_url' in schema) {
        const sdl = await fetchSubgraphSdl(name, schema.subgraph_url, schema.introspection_headers, timeoutMs);
        // rover routes to the introspected URL when no routing_url is given.
        return { name, routingUrl: entry.routing_url ?? schema.subgraph_url, sdl, sourceName: schema.subgraph_url };
      }
      return { name, routingUrl: entry.routing_url, sdl: schema.sdl, sourceName: `${absoluteYaml}#${name}` };
    }),
  );

  const subgraphs: ComposedSubgraph[] = [];
  const errors: GraphQLError[] = [];
  for (const item of loaded) {
    if (!item.routingUrl) {
      throw new SupergraphConfigError(`Subgraph "${item.name}": routing_url is required for a schema.${item.file ? 'file' : 'sdl'}`);
    }
    try {
      const typeDefs = parse(new SubgraphSource(item.sdl, item.sourceName, item.name));
      subgraphs.push({ name: item.name, routingUrl: item.routingUrl, typeDefs, ...(item.file ? { file: item.file } : {}) });
    } catch (err) {
      if (!(err instanceof GraphQLError)) throw err;
      // A syntax error is reported like a composition error so every problem is printed at once.
      errors.push(
        new GraphQLError(`[${item.name}] ${err.message}`, {
          source: err.source,
          positions: err.positions,
          extensions: { code: 'INVALID_GRAPHQL' },
        }),
      );
    }
  }
  const base = { warnings, subgraphs, files: [...new Set(files)] };
  if (errors.length > 0) return { ...base, errors, hints: [] };

  const result = composeServices(subgraphs.map((s) => ({ name: s.name, url: s.routingUrl, typeDefs: s.typeDefs })));
  if (result.errors) return { ...base, errors: result.errors, hints: [] };
  return { ...base, supergraphSdl: result.supergraphSdl, hints: result.hints };
}

/** Where in which subgraph a composition error or hint points. */
export interface SchemaLocation {
  subgraph?: string;
  /** A schema coordinate such as `User`, `User.email` or `Query.user(id:)`. */
  coordinate?: string;
  /** The file (or URL) the subgraph's SDL came from. */
  file?: string;
  line?: number;
  column?: number;
}

/** A composition error or hint in a shape that is easy to print or assert on. */
export interface CompositionProblem {
  code: string;
  message: string;
  locations: SchemaLocation[];
}

const documentsBySource = new WeakMap<Source, DocumentNode | null>();

function documentOf(source: Source): DocumentNode | null {
  if (documentsBySource.has(source)) return documentsBySource.get(source) ?? null;
  let doc: DocumentNode | null = null;
  try {
    doc = parse(source);
  } catch {
    doc = null;
  }
  documentsBySource.set(source, doc);
  return doc;
}

interface Located {
  loc?: { start: number; end: number };
}
const contains = (node: Located, offset: number) => node.loc !== undefined && node.loc.start <= offset && offset < node.loc.end;

/** The schema coordinate of the definition that encloses `offset` in a subgraph's SDL. */
function coordinateAt(doc: DocumentNode, offset: number): string | undefined {
  const def: DefinitionNode | undefined = doc.definitions.find((d) => contains(d, offset));
  if (!def) return undefined;
  switch (def.kind) {
    case 'SchemaDefinition':
    case 'SchemaExtension':
      return 'schema';
    case 'DirectiveDefinition': {
      const arg = def.arguments?.find((a) => contains(a, offset));
      return arg ? `@${def.name.value}(${arg.name.value}:)` : `@${def.name.value}`;
    }
    case 'ObjectTypeDefinition':
    case 'ObjectTypeExtension':
    case 'InterfaceTypeDefinition':
    case 'InterfaceTypeExtension': {
      const field = def.fields?.find((f) => contains(f, offset));
      if (!field) return def.name.value;
      const arg = field.arguments?.find((a) => contains(a, offset));
      return arg ? `${def.name.value}.${field.name.value}(${arg.name.value}:)` : `${def.name.value}.${field.name.value}`;
    }
    case 'InputObjectTypeDefinition':
    case 'InputObjectTypeExtension': {
      const field = def.fields?.find((f) => contains(f, offset));
      return field ? `${def.name.value}.${field.name.value}` : def.name.value;
    }
    case 'EnumTypeDefinition':
    case 'EnumTypeExtension': {
      const value = def.values?.find((v) => contains(v, offset));
      return value ? `${def.name.value}.${value.name.value}` : def.name.value;
    }
    case 'ScalarTypeDefinition':
    case 'ScalarTypeExtension':
    case 'UnionTypeDefinition':
    case 'UnionTypeExtension':
      return def.name.value;
    default:
      return undefined;
  }
}

function locationOf(source: Source, offset: number, subgraph: string | undefined, fallbackCoordinate?: string): SchemaLocation {
  const { line, column } = getLocation(source, offset);
  const doc = documentOf(source);
  return {
    subgraph: subgraph ?? (source instanceof SubgraphSource ? source.subgraph : undefined),
    // Where the node is says more than the hint's own coordinate, which may not exist in every subgraph.
    coordinate: (doc ? coordinateAt(doc, offset) : undefined) ?? fallbackCoordinate,
    file: source.name,
    line,
    column,
  };
}

/** Composition sometimes tags AST nodes with their subgraph (federation's `SubgraphASTNode`). */
function subgraphTag(node: ASTNode): string | undefined {
  const tagged = node as ASTNode & { subgraph?: unknown };
  return typeof tagged.subgraph === 'string' ? tagged.subgraph : undefined;
}

function locationsOf(nodes: readonly ASTNode[] | undefined, fallbackCoordinate?: string): SchemaLocation[] {
  const out: SchemaLocation[] = [];
  const seen = new Set<string>();
  for (const node of nodes ?? []) {
    if (!node.loc) {
      const subgraph = subgraphTag(node);
      if (subgraph) out.push({ subgraph, coordinate: fallbackCoordinate });
      continue;
    }
    const location = locationOf(node.loc.source, node.loc.start, subgraphTag(node), fallbackCoordinate);
    // A directive and the type it sits on point at the same place; print it once.
    const key = `${location.subgraph}|${location.coordinate}|${location.file}`;
    if (seen.has(key)) continue;
    seen.add(key);
    out.push(location);
  }
  return out;
}

/**
 * Describes a composition error: its code, its message, and for every AST node it carries, the
 * subgraph, schema coordinate and file position. Syntax errors (no nodes, only a source and
 * positions) are located the same way.
 */
export function describeCompositionError(error: GraphQLError): CompositionProblem {
  const code = typeof error.extensions.code === 'string' ? error.extensions.code : 'COMPOSITION_ERROR';
  let locations = locationsOf(error.nodes);
  if (locations.length === 0 && error.source && error.positions) {
    const source = error.source;
    locations = error.positions.map((p) => locationOf(source, p, undefined));
  }
  return { code, message: error.message, locations };
}

/** Describes a composition hint (a warning that did not stop composition) like an error. */
export function describeCompositionHint(hint: CompositionHint): CompositionProblem {
  const locations = locationsOf(hint.nodes, hint.coordinate);
  if (locations.length === 0 && hint.coordinate) locations.push({ coordinate: hint.coordinate });
  return { code: hint.definition.code, message: hint.message, locations };
}

export interface FormatOptions {
  /** Print file paths relative to this directory. @default absolute paths */
  relativeTo?: string;
}

function formatLocation(location: SchemaLocation, options: FormatOptions): string {
  const parts: string[] = [];
  if (location.subgraph) parts.push(`subgraph "${location.subgraph}"`);
  if (location.coordinate) parts.push(location.coordinate);
  let where = '';
  if (location.file) {
    const isPath = path.isAbsolute(location.file) && !location.file.includes('#');
    const file = isPath && options.relativeTo ? path.relative(options.relativeTo, location.file) : location.file;
    where = location.line !== undefined ? `${file}:${location.line}:${location.column}` : file;
  }
  return `    at ${parts.join(' ') || '(unknown)'}${where ? ` (${where})` : ''}`;
}

/** Formats a described problem as `CODE: message` followed by one `at ...` line per location. */
export function formatCompositionProblem(problem: CompositionProblem, options: FormatOptions = {}): string {
  return [`${problem.code}: ${problem.message}`, ...problem.locations.map((l) => formatLocation(l, options))].join('\n');
}

/**
 * Formats a composition error for people: code, message, then the subgraph, schema coordinate
 * and `file:line:column` of every place it points at, e.g.
 *
 * ```
 * KEY_INVALID_FIELDS: [reviews] On type "Review", for @key(fields: "uuid"): Cannot query field "uuid" ...
 *     at subgraph "reviews" Review (subgraphs/reviews/src/schema.graphql:12:13)
 * ```
 */
export function formatCompositionError(error: GraphQLError, options: FormatOptions = {}): string {
  return formatCompositionProblem(describeCompositionError(error), options);
}

/** Formats a composition hint the way {@link formatCompositionError} formats an error. */
export function formatCompositionHint(hint: CompositionHint, options: FormatOptions = {}): string {
  return formatCompositionProblem(describeCompositionHint(hint), options);
}

/** Reads a composed supergraph file (the output of `npm run compose` or `rover supergraph compose`). */
export async function readSupergraphFile(file: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (err) {
    throw new SupergraphConfigError(`Cannot read supergraph ${file}: ${(err as Error).message}`);
  }
}

/**
 * The text written to a supergraph file: the composed SDL and one final newline. Composition
 * output depends only on the subgraph SDLs and routing URLs, so a fresh compose reproduces a
 * committed supergraph.graphql byte for byte.
 */
export function supergraphFileText(supergraphSdl: string): string {
  return `${supergraphSdl.replace(/\s+$/, '')}\n`;
}

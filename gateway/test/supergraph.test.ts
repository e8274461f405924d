// composeFromConfig and the error formatting the gateway and `npm run compose` share.
import {
  SupergraphConfigError,
  composeFromConfig,
  describeCompositionError,
  describeCompositionHint,
  formatCompositionError,
} from '@shop/composition';
import { type TempDir, authorsSdl, booksSdl, tempDir } from './harness';

let dir: TempDir;
beforeAll(async () => {
  dir = await tempDir();
  await dir.write('authors.graphql', authorsSdl(true));
  await dir.write('books.graphql', booksSdl);
});
afterAll(async () => {
  await dir?.remove();
});

const config = (version: string, books = 'file: ./books.graphql') => `federation_version: ${version}
subgraphs:
  authors:
    routing_url: http://authors/graphql
    schema:
      file: ./authors.graphql
  books:
    routing_url: http://books/graphql
    schema:
      ${books}
`;

describe('composeFromConfig', () => {
  it('composes and lists the files it read', async () => {
    const yaml = await dir.write('ok.yaml', config('2'));
    const result = await composeFromConfig(yaml);
    expect(result.errors).toBeUndefined();
    expect(result.supergraphSdl).toContain('@join__graph(name: "books", url: "http://books/graphql")');
    expect(result.files).toEqual([yaml, dir.file('authors.graphql'), dir.file('books.graphql')]);
    expect(result.warnings).toEqual([]);
  });

  it('gives the same supergraph whatever the order of the subgraphs', async () => {
    const forward = await composeFromConfig(await dir.write('forward.yaml', config('2')));
    const swapped = config('2').replace(/ {2}authors:[\s\S]*?(?= {2}books:)/, '');
    const reversed = `${swapped}  authors:\n    routing_url: http://authors/graphql\n    schema:\n      file: ./authors.graphql\n`;
    const backward = await composeFromConfig(await dir.write('backward.yaml', reversed));
    expect(backward.subgraphs.map((s) => s.name)).toEqual(['books', 'authors']);
    expect(backward.supergraphSdl).toBe(forward.supergraphSdl);
  });

  it('warns when federation_version pins another composition version, refuses Federation 1', async () => {
    const pinned = await composeFromConfig(await dir.write('pinned.yaml', config('=2.3.0')));
    expect(pinned.supergraphSdl).toBeDefined();
    expect(pinned.warnings[0]).toMatch(/=2\.3\.0 is pinned, but composing with @apollo\/composition 2\.14\.4/);
    await expect(composeFromConfig(await dir.write('fed1.yaml', config('1')))).rejects.toThrow(/federation_version 1 is not supported/);
  });

  it('accepts inline sdl and rejects graphref with a reason', async () => {
    const inline = `sdl: ${JSON.stringify(booksSdl)}`;
    const result = await composeFromConfig(await dir.write('inline.yaml', config('2', inline)));
    expect(result.errors).toBeUndefined();
    const graphref = 'graphref: shop@current\n      subgraph: books';
    await expect(composeFromConfig(await dir.write('graphref.yaml', config('2', graphref)))).rejects.toThrow(
      /Subgraph "books": schema.graphref needs GraphOS/,
    );
  });

  it('rejects a yaml that is not a supergraph config, saying where', async () => {
    const yaml = await dir.write('bad.yaml', 'subgraphs:\n  books:\n    routing_url: http://b\n');
    await expect(composeFromConfig(yaml)).rejects.toBeInstanceOf(SupergraphConfigError);
    await expect(composeFromConfig(yaml)).rejects.toThrow(/subgraphs\.books\.schema/);
  });

  it('reports a syntax error in a subgraph like a composition error, located', async () => {
    await dir.write('syntax.graphql', `${booksSdl}\ntype Broken {\n  x:\n}\n`);
    const result = await composeFromConfig(await dir.write('syntax.yaml', config('2', 'file: ./syntax.graphql')));
    expect(result.errors).toHaveLength(1);
    const problem = describeCompositionError(result.errors![0]!);
    expect(problem.code).toBe('INVALID_GRAPHQL');
    // Where parsing stopped: the `}` after `x:`. An SDL that does not parse has no coordinates.
    expect(problem.locations).toEqual([
      { subgraph: 'books', coordinate: undefined, file: dir.file('syntax.graphql'), line: 19, column: 1 },
    ]);
  });

  it('locates each side of a conflict between subgraphs', async () => {
    await dir.write(
      'conflict.graphql',
      booksSdl.replace('type Author @key(fields: "id") {\n  id: ID!', 'type Author @key(fields: "id") {\n  id: ID!\n  name: Int!'),
    );
    const result = await composeFromConfig(await dir.write('conflict.yaml', config('2', 'file: ./conflict.graphql')));
    const mismatch = result.errors?.find((e) => e.extensions.code === 'FIELD_TYPE_MISMATCH');
    expect(mismatch).toBeDefined();
    const text = formatCompositionError(mismatch!, { relativeTo: dir.dir });
    expect(text).toMatch(/^FIELD_TYPE_MISMATCH: Type of field "Author.name" is incompatible across subgraphs/);
    expect(text).toContain('at subgraph "authors" Author.name (authors.graphql:4:3)');
    expect(text).toContain('at subgraph "books" Author.name (conflict.graphql:9:3)');
  });

  it('describes hints with their subgraph and coordinate', async () => {
    await dir.write('hinted.graphql', `${booksSdl}\nenum Shelf { TOP BOTTOM }\n`);
    const result = await composeFromConfig(await dir.write('hinted.yaml', config('2', 'file: ./hinted.graphql')));
    expect(result.errors).toBeUndefined();
    const unused = result.hints.map(describeCompositionHint).find((h) => h.code === 'UNUSED_ENUM_TYPE');
    expect(unused?.locations[0]).toMatchObject({ coordinate: 'Shelf' });
  });
});

import { readFileSync } from 'node:fs';
import { type DocumentNode, parse } from 'graphql';

/** Reads and parses a subgraph's SDL file: the same file supergraph.yaml points at. */
export function loadTypeDefs(path: string): DocumentNode {
  return parse(readFileSync(path, 'utf8'));
}

// The property test's generator must make what it claims: operations that validate against the
// API schema, with variables that coerce, and mutations that differ from what they mutate.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Supergraph } from '@apollo/federation-internals';
import fc from 'fast-check';
import { getVariableValues, parse, validate } from 'graphql';
import { mutatedRequest, validOperation } from '../src/operations';

// Built as Apollo Router builds it: the supergraph links the authorization specs `for: SECURITY`,
// which @apollo/gateway's own list of features refuses (our gateway enforces them).
const schema = Supergraph.buildForTests(readFileSync(join(__dirname, '..', '..', '..', 'supergraph.graphql'), 'utf8'))
  .apiSchema()
  .toGraphQLJSSchema();

it('generates operations that validate against the API schema, with variables that coerce', () => {
  fc.assert(
    fc.property(validOperation(schema, { ids: ['u00001', 'p00001'] }), (op) => {
      const document = parse(op.query);
      const errors = validate(schema, document);
      if (errors.length > 0) throw new Error(`${op.query}\n${errors.map((e) => e.message).join('\n')}`);
      const operations = document.definitions.filter((d) => d.kind === 'OperationDefinition');
      expect(operations).toHaveLength(1);
      const operation = operations[0]!;
      const coerced = getVariableValues(schema, operation.variableDefinitions ?? [], op.variables);
      if (coerced.errors)
        throw new Error(`${op.query}\n${JSON.stringify(op.variables)}\n${coerced.errors.map((e) => e.message).join('\n')}`);
    }),
    { numRuns: 1000 },
  );
});

it('reaches queries and mutations, fragments, aliases, variables and directives, nested up to 5 levels', () => {
  const seen = { query: 0, mutation: 0, fragment: 0, inline: 0, alias: 0, variable: 0, directive: 0, deep: 0 };
  for (const op of fc.sample(validOperation(schema), { numRuns: 1000, seed: 1 })) {
    if (op.query.startsWith('mutation')) seen.mutation++;
    else seen.query++;
    if (/^fragment /m.test(op.query)) seen.fragment++;
    if (op.query.includes('... on ')) seen.inline++;
    if (/\ba\d+: /.test(op.query)) seen.alias++;
    if (Object.keys(op.variables).length > 0) seen.variable++;
    if (/@(include|skip)\(/.test(op.query)) seen.directive++;
    if (/(\{[^{}]*){5}/.test(op.query.split('\n')[0] ?? '')) seen.deep++;
  }
  for (const [what, count] of Object.entries(seen)) expect({ what, some: count > 20 }).toEqual({ what, some: true });
});

it('mutates: nearly every body differs from the valid operation, and says how', () => {
  const arbitrary = validOperation(schema).chain((op) => mutatedRequest(op).map((m) => ({ op, m })));
  const samples = fc.sample(arbitrary, { numRuns: 500, seed: 2 });
  for (const { m } of samples) expect(m.how).toMatch(/^mutated: /);
  // Swapping two equal tokens (two `{`) changes nothing; that is rare.
  const unchanged = samples.filter(({ op, m }) => m.body === JSON.stringify(op));
  expect(unchanged.length).toBeLessThan(samples.length / 20);
});

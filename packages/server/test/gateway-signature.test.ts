// A subgraph with a gateway secret answers only requests the gateway signed: fresh, matching
// method, path, identity and body. Everything else is 401 UNAUTHENTICATED and reaches no resolver.
import { parse } from 'graphql';
import { testTelemetry } from '@shop/testing';
import {
  IDENTITY_HEADER,
  type Identity,
  SIGNATURE_HEADER,
  SIGNATURE_MAX_AGE_MS,
  type Subgraph,
  createSubgraph,
  decodeIdentity,
  encodeIdentity,
  signatureHeader,
} from '../src';

const SECRET = 'a-test-secret-that-is-long-enough-0123456789';
const PATH = '/graphql';

interface Sent {
  body?: string;
  /** Headers besides content-type; undefined values are left out. */
  headers?: Record<string, string | undefined>;
  method?: string;
  path?: string;
}

describe('a subgraph that trusts only the gateway', () => {
  let subgraph: Subgraph;
  let base: string;
  /** The identity each resolved request's context got. */
  const contexts: Array<Identity | undefined> = [];
  let resolverCalls = 0;

  beforeAll(async () => {
    subgraph = await createSubgraph({
      telemetry: testTelemetry('signed'),
      typeDefs: parse('type Query { whoami: String! }'),
      resolvers: {
        Query: {
          whoami: (_: unknown, __: unknown, context: { identity: Identity | undefined }) => {
            resolverCalls++;
            return context.identity?.sub ?? 'anonymous';
          },
        },
      },
      context: async ({ identity }) => {
        contexts.push(identity);
        return { identity };
      },
      ready: async () => true,
    });
    base = (await subgraph.listen(0, '127.0.0.1', { gatewaySecret: SECRET })).url;
  });
  afterAll(() => subgraph.stop());

  const body = JSON.stringify({ query: '{ whoami }' });
  const alice: Identity = { sub: 'u00001', roles: ['customer'], scopes: ['orders:read'] };
  const sign = (parts: { body?: string; identity?: string; timestamp?: number; secret?: string; method?: string; path?: string }) =>
    signatureHeader(parts.secret ?? SECRET, {
      method: parts.method ?? 'POST',
      path: parts.path ?? PATH,
      timestamp: parts.timestamp ?? Date.now(),
      identity: parts.identity ?? '',
      body: parts.body ?? body,
    });

  async function send(
    sent: Sent,
  ): Promise<{ status: number; json: { data?: unknown; errors?: Array<{ extensions?: { code?: string } }> } }> {
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    for (const [name, value] of Object.entries(sent.headers ?? {})) if (value !== undefined) headers[name] = value;
    const method = sent.method ?? 'POST';
    const res = await fetch(`${base}${sent.path ?? PATH}`, { method, headers, ...(method === 'POST' ? { body: sent.body ?? body } : {}) });
    return { status: res.status, json: (await res.json()) as { data?: unknown; errors?: Array<{ extensions?: { code?: string } }> } };
  }

  const expectRefused = async (sent: Sent) => {
    const calls = resolverCalls;
    const contextsBefore = contexts.length;
    const { status, json } = await send(sent);
    expect(status).toBe(401);
    expect(json.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
    expect(json.data).toBeUndefined();
    // Refused at the HTTP front: Apollo built no context and ran no resolver.
    expect(resolverCalls).toBe(calls);
    expect(contexts.length).toBe(contextsBefore);
  };

  it('answers a signed request, with the signed identity in the context', async () => {
    const identity = encodeIdentity(alice);
    const { status, json } = await send({ headers: { [IDENTITY_HEADER]: identity, [SIGNATURE_HEADER]: sign({ identity }) } });
    expect(status).toBe(200);
    expect(json.data).toEqual({ whoami: 'u00001' });
    expect(contexts.at(-1)).toEqual(alice);
  });

  it('answers a signed request without identity as anonymous', async () => {
    const { status, json } = await send({ headers: { [SIGNATURE_HEADER]: sign({}) } });
    expect(status).toBe(200);
    expect(json.data).toEqual({ whoami: 'anonymous' });
    expect(contexts.at(-1)).toBeUndefined();
  });

  it('refuses an unsigned request', async () => {
    await expectRefused({});
    // An identity header alone proves nothing.
    await expectRefused({ headers: { [IDENTITY_HEADER]: encodeIdentity(alice) } });
  });

  it('refuses a malformed signature header', async () => {
    await expectRefused({ headers: { [SIGNATURE_HEADER]: 'v1=abc' } });
    await expectRefused({ headers: { [SIGNATURE_HEADER]: `t=${Date.now()},v1=${'0'.repeat(63)}` } });
  });

  it('refuses a stale signature, and one from the future', async () => {
    const stale = Date.now() - SIGNATURE_MAX_AGE_MS - 1_000;
    await expectRefused({ headers: { [SIGNATURE_HEADER]: sign({ timestamp: stale }) } });
    const future = Date.now() + SIGNATURE_MAX_AGE_MS + 1_000;
    await expectRefused({ headers: { [SIGNATURE_HEADER]: sign({ timestamp: future }) } });
  });

  it('refuses a tampered body', async () => {
    await expectRefused({ body: JSON.stringify({ query: '{ whoami __typename }' }), headers: { [SIGNATURE_HEADER]: sign({}) } });
  });

  it('refuses a tampered identity, and an identity added to an anonymous signature', async () => {
    const signedFor = encodeIdentity(alice);
    const swapped = encodeIdentity({ ...alice, sub: 'u00002' });
    await expectRefused({ headers: { [IDENTITY_HEADER]: swapped, [SIGNATURE_HEADER]: sign({ identity: signedFor }) } });
    await expectRefused({ headers: { [IDENTITY_HEADER]: signedFor, [SIGNATURE_HEADER]: sign({}) } });
    const escalated = encodeIdentity({ ...alice, roles: ['admin'] });
    await expectRefused({ headers: { [IDENTITY_HEADER]: escalated, [SIGNATURE_HEADER]: sign({ identity: signedFor }) } });
  });

  it('refuses a signature made with another secret, or for another path or method', async () => {
    await expectRefused({ headers: { [SIGNATURE_HEADER]: sign({ secret: 'another-secret-of-the-same-sort-0123456789' }) } });
    await expectRefused({ headers: { [SIGNATURE_HEADER]: sign({ path: '/other' }) } });
    await expectRefused({
      method: 'GET',
      path: `${PATH}?query=${encodeURIComponent('{ whoami }')}`,
      headers: { [SIGNATURE_HEADER]: sign({}) },
    });
  });

  it('answers a signed GET query', async () => {
    const path = `${PATH}?query=${encodeURIComponent('{ whoami }')}`;
    const { status, json } = await send({ method: 'GET', path, headers: { [SIGNATURE_HEADER]: sign({ method: 'GET', path, body: '' }) } });
    expect(status).toBe(200);
    expect(json.data).toEqual({ whoami: 'anonymous' });
  });

  it('keeps /health, /ready and /metrics open', async () => {
    for (const path of ['/health', '/ready', '/metrics']) expect((await fetch(`${base}${path}`)).status).toBe(200);
  });
});

describe('identity headers', () => {
  it('round-trip, and anything else decodes to nothing', () => {
    const identity: Identity = { sub: 'u1', roles: ['admin'], scopes: ['catalog:write', 'orders:admin'] };
    expect(decodeIdentity(encodeIdentity(identity))).toEqual(identity);
    expect(decodeIdentity('not base64 json')).toBeUndefined();
    expect(decodeIdentity(Buffer.from(JSON.stringify({ sub: 1, roles: [], scopes: [] })).toString('base64url'))).toBeUndefined();
    expect(decodeIdentity(Buffer.from(JSON.stringify({ sub: 'u', roles: 'admin', scopes: [] })).toString('base64url'))).toBeUndefined();
  });
});

describe('a subgraph without a secret', () => {
  it('answers unsigned requests, and trusts no identity header', async () => {
    const seen: Array<Identity | undefined> = [];
    const open = await createSubgraph({
      telemetry: testTelemetry('open'),
      typeDefs: parse('type Query { ok: Boolean! }'),
      resolvers: { Query: { ok: () => true } },
      context: async ({ identity }) => {
        seen.push(identity);
        return {};
      },
      ready: async () => true,
    });
    try {
      const { url } = await open.listen(0, '127.0.0.1');
      const res = await fetch(`${url}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', [IDENTITY_HEADER]: encodeIdentity({ sub: 'u1', roles: ['admin'], scopes: [] }) },
        body: JSON.stringify({ query: '{ ok }' }),
      });
      expect(res.status).toBe(200);
      expect(seen).toEqual([undefined]);
    } finally {
      await open.stop();
    }
  });
});

describe('a subgraph with a secret that allows unsigned requests (the bench)', () => {
  it('answers an unsigned request as anonymous, an unsigned identity header included, and still checks a signed one', async () => {
    const seen: Array<Identity | undefined> = [];
    const mixed = await createSubgraph({
      telemetry: testTelemetry('mixed'),
      typeDefs: parse('type Query { ok: Boolean! }'),
      resolvers: { Query: { ok: () => true } },
      context: async ({ identity }) => {
        seen.push(identity);
        return {};
      },
      ready: async () => true,
    });
    try {
      const { url } = await mixed.listen(0, '127.0.0.1', { gatewaySecret: SECRET, allowUnsigned: true });
      const body = JSON.stringify({ query: '{ ok }' });
      const post = (headers: Record<string, string>) =>
        fetch(`${url}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body });
      const admin = encodeIdentity({ sub: 'u1', roles: ['admin'], scopes: ['orders:admin'] });
      expect((await post({})).status).toBe(200);
      expect((await post({ [IDENTITY_HEADER]: admin })).status).toBe(200);
      const signed = (identity: string, secret = SECRET) =>
        signatureHeader(secret, { method: 'POST', path: PATH, timestamp: Date.now(), identity, body });
      expect((await post({ [IDENTITY_HEADER]: admin, [SIGNATURE_HEADER]: signed(admin) })).status).toBe(200);
      // A signature that does not verify is refused, as without allowUnsigned.
      expect(
        (await post({ [IDENTITY_HEADER]: admin, [SIGNATURE_HEADER]: signed(admin, 'another-secret-of-the-same-sort-0123456789') })).status,
      ).toBe(401);
      expect(seen).toEqual([undefined, undefined, { sub: 'u1', roles: ['admin'], scopes: ['orders:admin'] }]);
    } finally {
      await mixed.stop();
    }
  });
});

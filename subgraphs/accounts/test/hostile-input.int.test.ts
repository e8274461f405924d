import { storeBackend } from '@shop/testing';
import { type Running, hostileInputSuite, startAccounts } from './hostile-input-suite';

// Real PostgreSQL: the store that cannot hold U+0000 ("invalid byte sequence for encoding UTF8").
hostileInputSuite(storeBackend('postgres', 'accounts_hostile'));

describe('without the input guard, a NUL character reaches PostgreSQL (what the guard prevents)', () => {
  const backend = storeBackend('postgres', 'accounts_unguarded');
  let server: Running;
  beforeAll(async () => {
    server = await startAccounts(backend, { maskErrors: true, inputLimits: false });
  });
  afterAll(async () => {
    await server?.stop();
    await backend.cleanup();
  });

  it('the driver error is logged with the request id, and the client gets INTERNAL_SERVER_ERROR and that id only', async () => {
    const before = await server.storeQueries();
    const res = await server.client.query('{ user(id: "u00001\\u0000") { name } }', undefined, { 'x-request-id': 'nul-unguarded' });
    expect(await server.storeQueries()).toBeGreaterThan(before);
    expect(res.errors?.[0]).toMatchObject({
      message: 'Internal server error (request id nul-unguarded)',
      path: ['user'],
      extensions: { code: 'INTERNAL_SERVER_ERROR', requestId: 'nul-unguarded' },
    });
    expect(JSON.stringify(res)).not.toMatch(/UTF8|byte sequence|select/i);
    const logged = server.lines.filter((l) => l.requestId === 'nul-unguarded' && l.level >= 50);
    expect(logged.map((l) => l.err?.message).join('\n')).toMatch(/invalid byte sequence for encoding "UTF8": 0x00/);
  });
});

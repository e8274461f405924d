// Nothing that runs in a deployment assumes that another service is on the same machine: every
// address comes from configuration. This lists each mention of the loopback in the services'
// code (gateway, subgraphs, packages, launchers and scripts) and fails on one that is not
// accounted for here, with why it is harmless. The multi-host rig (rig.e2e.test.ts) shows the
// same from the other side: the services work with every address on another host.
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { REPO_ROOT } from '@shop/stack';

const LOOPBACK = /localhost|127\.0\.0\.1|\[::1\]/;

/** Where the loopback may be mentioned, how often, and why that assumes nothing about a deployment. */
const ACCOUNTED: Record<string, { count: number; why: string }> = {
  'gateway/src/explorer.ts': { count: 1, why: 'the base URL for parsing a request path (new URL(req.url, base)): never contacted' },
  'packages/server/src/http.ts': {
    count: 3,
    why: 'the base for parsing a request path; the URL shown for a server bound to 0.0.0.0; freePort, the launchers’ port finder',
  },
  'packages/events/src/bus-amqp.ts': { count: 1, why: 'an example URL in a comment' },
  'stack/src/index.ts': { count: 4, why: 'the embedded mode: one process on a developer’s machine, by definition' },
  'stack/src/services.ts': {
    count: 7,
    why: '`npm run start:services` on one machine: defaults, each overridden by <SERVICE>_DATABASE_URL, AMQP_URL, SUBGRAPH_<NAME>_URL',
  },
  'stack/src/hosts.ts': { count: 1, why: 'the header comment explaining that the test hosts do not use it' },
  'scripts/events.ts': { count: 4, why: 'defaults of an operator tool, overridden by AMQP_URL and <SERVICE>_DATABASE_URL' },
  'scripts/start-services.ts': { count: 1, why: 'a comment on the one-machine launcher’s default' },
};

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const full = path.join(dir, name);
    if (statSync(full).isDirectory()) return name === 'generated' || name === 'node_modules' ? [] : files(full);
    return name.endsWith('.ts') ? [full] : [];
  });
}

function sources(): string[] {
  const roots = ['gateway/src', 'stack/src', 'scripts'];
  for (const parent of ['subgraphs', 'packages']) {
    for (const name of readdirSync(path.join(REPO_ROOT, parent))) {
      // @shop/testing is the tests' own library: its services are this machine's by design.
      if (parent === 'packages' && name === 'testing') continue;
      if (existsSync(path.join(REPO_ROOT, parent, name, 'src'))) roots.push(`${parent}/${name}/src`);
    }
  }
  return roots.flatMap((root) => files(path.join(REPO_ROOT, root)));
}

describe('no service assumes localhost', () => {
  it('mentions the loopback only where accounted for', () => {
    const found: Record<string, number> = {};
    for (const file of sources()) {
      const count = readFileSync(file, 'utf8')
        .split('\n')
        .filter((line) => LOOPBACK.test(line)).length;
      if (count > 0) found[path.relative(REPO_ROOT, file)] = count;
    }
    expect(found).toEqual(Object.fromEntries(Object.entries(ACCOUNTED).map(([file, { count }]) => [file, count])));
  });

  it('finds a mention that is not accounted for', () => {
    // The check itself: a line like a subgraph calling another on the loopback is caught.
    expect(LOOPBACK.test("const url = 'http://127.0.0.1:4002/graphql';")).toBe(true);
    expect(LOOPBACK.test('const url = config.productsUrl;')).toBe(false);
  });
});

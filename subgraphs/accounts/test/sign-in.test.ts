import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { Backend } from '@shop/testing';
import { sqliteFileFor } from '@shop/store';
import { signInSuite } from './sign-in-suite';

// SQLite files (not :memory:): `npm run token` opens the store the running subgraph uses.
const dirs: string[] = [];
const files: Backend = {
  name: 'sqlite',
  location: async () => {
    const dir = mkdtempSync(join(tmpdir(), 'accounts-sign-in-'));
    dirs.push(dir);
    return { sqlitePath: sqliteFileFor(dir, 'accounts') };
  },
  cleanup: async () => {
    for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  },
};

signInSuite(files, (location) => ({ DATA_DIR: dirname(dirname(location.sqlitePath!)), ACCOUNTS_DATABASE_URL: '' }));

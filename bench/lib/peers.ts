// The bench's peers (Hive Gateway) are not the platform's dependencies: they live in bench/peers
// with a lockfile of their own and are installed there on first use, so `npm install` at the
// root does not bring a second gateway and its dependency tree to every user of the platform.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** The folder the peers are installed in. */
export const peersDir = (repoRoot: string): string => join(repoRoot, 'bench', 'peers');

/** A file under the peers' node_modules (for example a package's bin or package.json). */
export const peerPath = (repoRoot: string, ...parts: string[]): string => join(peersDir(repoRoot), 'node_modules', ...parts);

/**
 * Installs the peers with `npm ci` from bench/peers/package-lock.json unless the installed tree
 * was made from that same lockfile (its hash is kept in node_modules). Synchronous and idempotent:
 * a run that starts a peer calls it first; later calls cost one hash of the lockfile.
 */
export function ensurePeers(repoRoot: string, log: (line: string) => void = () => undefined): void {
  const dir = peersDir(repoRoot);
  const lock = readFileSync(join(dir, 'package-lock.json'));
  const hash = createHash('sha256').update(lock).digest('hex');
  const stamp = join(dir, 'node_modules', '.installed-from-lock');
  if (existsSync(stamp) && readFileSync(stamp, 'utf8') === hash) return;
  log('installing the bench peers (bench/peers, npm ci; once)...');
  const started = Date.now();
  const npm = spawnSync('npm', ['ci', '--no-audit', '--no-fund', '--loglevel=error'], {
    cwd: dir,
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  if (npm.status !== 0)
    throw new Error(`npm ci in ${dir} failed (exit ${String(npm.status)}): the bench needs its peers; is the npm registry reachable?`);
  writeFileSync(stamp, hash);
  log(`installed the bench peers in ${Math.round((Date.now() - started) / 1000)} s`);
}

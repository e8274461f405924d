// Reads a V8 CPU profile (`node --cpu-prof`) and says where the time went: the functions with
// the most self time, and self time by package.
import { readFileSync } from 'node:fs';
import type { ProfileFrame } from './types';

interface CpuProfile {
  nodes: Array<{ id: number; callFrame: { functionName: string; url: string; lineNumber: number } }>;
  startTime: number;
  samples: number[];
  timeDeltas: number[];
}

/** A span of the monotonic clock in microseconds: V8 stamps samples with the clock `process.hrtime` reads. */
export interface Window {
  fromUs: number;
  toUs: number;
}

/** Now, on the clock of profile timestamps. */
export const monotonicUs = () => Number(process.hrtime.bigint() / 1000n);

/** The package a script belongs to: node_modules/<pkg>, Node's internals, or a repository folder. */
export function packageOf(url: string, repoRoot: string): string {
  if (url === '') return '(native)';
  if (url.startsWith('node:')) return 'node (internals)';
  const nm = url.lastIndexOf('/node_modules/');
  if (nm >= 0) {
    const rest = url.slice(nm + '/node_modules/'.length).split('/');
    return rest[0]?.startsWith('@') ? `${rest[0]}/${rest[1]}` : (rest[0] ?? url);
  }
  const path = url.replace(/^file:\/\//, '');
  if (path.startsWith(repoRoot)) {
    const parts = path.slice(repoRoot.length + 1).split('/');
    return parts.slice(0, Math.min(parts.length - 1, 3)).join('/') || path;
  }
  return path;
}

export interface ProfileDigest {
  topFrames: ProfileFrame[];
  byPackage: Array<{ package: string; selfPct: number }>;
  /** Whether only the samples inside the measured window were counted (start-up excluded). */
  windowed: boolean;
}

/**
 * Self time per function and per package. With `window`, only samples taken inside it count, so
 * start-up (module loading, compilation) and the warm-up stay out of the picture.
 */
export function digestProfile(file: string, repoRoot: string, window?: Window, top = 15): ProfileDigest {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const tally = (inside: (at: number) => boolean) => {
    const self = new Map<number, number>();
    let at = profile.startTime;
    profile.samples.forEach((id, i) => {
      const delta = profile.timeDeltas[i] ?? 0;
      at += delta;
      if (inside(at)) self.set(id, (self.get(id) ?? 0) + delta);
    });
    return self;
  };
  let selfByNode = window ? tally((at) => at >= window.fromUs && at <= window.toUs) : tally(() => true);
  const windowed = Boolean(window) && selfByNode.size > 0;
  if (!windowed) selfByNode = tally(() => true);
  const frames = new Map<string, { fn: string; location: string; us: number }>();
  const packages = new Map<string, number>();
  let busy = 0;
  for (const [id, us] of selfByNode) {
    const node = byId.get(id);
    if (!node) continue;
    const { functionName, url, lineNumber } = node.callFrame;
    if (functionName === '(idle)') continue;
    busy += us;
    const short = url.replace(/^file:\/\//, '').replace(`${repoRoot}/`, '');
    // Lines of TypeScript files are those of tsx's transpiled output, not of the source: omitted.
    const location = !url ? '' : short.endsWith('.ts') ? short : `${short}:${lineNumber + 1}`;
    const key = `${functionName}@${location}`;
    const frame = frames.get(key) ?? { fn: functionName || '(anonymous)', location, us: 0 };
    frame.us += us;
    frames.set(key, frame);
    const pkg =
      functionName === '(garbage collector)'
        ? '(garbage collector)'
        : functionName === '(program)'
          ? '(program)'
          : packageOf(url, repoRoot);
    packages.set(pkg, (packages.get(pkg) ?? 0) + us);
  }
  const pct = (us: number) => Math.round((us / Math.max(busy, 1)) * 1000) / 10;
  return {
    windowed,
    topFrames: [...frames.values()]
      .sort((a, b) => b.us - a.us)
      .slice(0, top)
      .map((f) => ({ function: f.fn, location: f.location, selfPct: pct(f.us) })),
    byPackage: [...packages.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, 12)
      .map(([name, us]) => ({ package: name, selfPct: pct(us) })),
  };
}

// The command-line convention every tool in scripts/ and bench/ shares (scripts/lib/cli.ts), and
// the bench's options and results schema built on it.
import { parseOptions } from '../bench/lib/options';
import { validateResults } from '../bench/lib/validate';
import { UsageError, parseCli } from '../scripts/lib/cli';

const USAGE = 'usage: tool [--out <file>] [--check]';
const config = (args: string[]) => ({
  args,
  options: { out: { type: 'string' as const }, check: { type: 'boolean' as const, default: false } },
});

function usageError(run: () => unknown): UsageError {
  try {
    run();
  } catch (err) {
    if (err instanceof UsageError) return err;
    throw err;
  }
  throw new Error('expected a UsageError');
}

describe('parseCli', () => {
  it('returns the typed values of a good command line', () => {
    const { values } = parseCli(USAGE, config(['--out', 'x.json', '--check']));
    expect(values.out).toBe('x.json');
    expect(values.check).toBe(true);
  });

  it.each([
    [['--bogus'], /Unknown option '--bogus'/],
    [['--out'], /argument missing/],
    [['stray'], /Unexpected argument 'stray'/],
  ])('refuses %j with exit code 2 and the usage', (args, message) => {
    const err = usageError(() => parseCli(USAGE, config(args)));
    expect(err.exitCode).toBe(2);
    expect(err.message).toMatch(message);
    expect(err.message.endsWith(USAGE)).toBe(true);
  });

  it.each([['--help'], ['-h']])('%s is the usage with exit code 0', (flag) => {
    const err = usageError(() => parseCli(USAGE, config([flag])));
    expect(err.exitCode).toBe(0);
    expect(err.message).toBe(USAGE);
  });
});

describe('bench options', () => {
  it('picks the mode, delay and cells from the command line and the environment', () => {
    expect(parseOptions(['--quick'], {}).delayMs).toBe(0);
    expect(parseOptions([], {}).delayMs).toBe(20);
    expect(parseOptions(['--quick'], { SUBGRAPH_DELAY_MS: '7' }).delayMs).toBe(7);
    expect(parseOptions(['--quick', '--delay', '9'], { SUBGRAPH_DELAY_MS: '7' }).delayMs).toBe(9);
    const only = parseOptions(['--quick', '--only', 'off/deep'], {});
    expect(only.writeDocs).toBe(false);
    expect(only.phases.flatMap((p) => p.cells.map((c) => `${p.name}/${c.workload}`))).toEqual(['off/deep']);
  });

  it.each([
    [['--delay', '5ms'], {}, /--delay must be a whole number/],
    [[], { SUBGRAPH_DELAY_MS: '-1' }, /SUBGRAPH_DELAY_MS must be a whole number/],
    [['--quick', '--smoke'], {}, /choose one of --quick, --smoke/],
    [['--quick', '--only', 'nope/deep'], {}, /--only matched no cell/],
    [['--fast'], {}, /Unknown option '--fast'/],
  ])('refuses %j %j', (args, env, message) => {
    expect(usageError(() => parseOptions(args, env)).message).toMatch(message);
  });
});

describe('bench results schema', () => {
  it('names the path of each problem', () => {
    const problems = validateResults({ schema: 2, mode: 'quick', cells: [] });
    expect(problems).toContain('$.schema: Invalid input: expected 1');
    expect(problems.some((p) => p.startsWith('$.cells:'))).toBe(true);
    expect(problems.some((p) => p.startsWith('$.machine:'))).toBe(true);
  });
});

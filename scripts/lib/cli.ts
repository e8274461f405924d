// What the repository's command-line tools (scripts/ and bench/) share: reading a file that may not
// exist, writing a generated report into a document, parsing arguments with node:util's parseArgs under one convention, and running `main`
// with the exit-code convention (0 done, 1 failed, 2 usage error).
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { type ParseArgsConfig, parseArgs } from 'node:util';

/** A file's text, or undefined when it cannot be read (it does not exist yet). */
export async function readIfExists(file: string): Promise<string | undefined> {
  try {
    return await readFile(file, 'utf8');
  } catch {
    return undefined;
  }
}

/**
 * Puts `text` between the `<!-- name:start -->` and `<!-- name:end -->` markers of `file` (a path
 * as typed where `npm run` was run), replacing what was there; throws when the markers are missing.
 * Returns the file's absolute path.
 */
export async function writeBetweenMarkers(file: string, name: string, text: string): Promise<string> {
  const target = path.resolve(process.env.INIT_CWD ?? process.cwd(), file);
  const start = `<!-- ${name}:start -->`;
  const end = `<!-- ${name}:end -->`;
  const doc = await readFile(target, 'utf8');
  const from = doc.indexOf(start);
  const to = doc.indexOf(end);
  if (from < 0 || to < from) throw new Error(`${target} has no ${start} ... ${end} section`);
  await writeFile(target, `${doc.slice(0, from + start.length)}\n\n${text}\n\n${doc.slice(to)}`);
  return target;
}

/**
 * A mistake on the command line, its message ending with the usage text: runCli prints it to
 * stderr and exits 2. `--help` is one too, with exit code 0: the usage goes to stdout.
 */
export class UsageError extends Error {
  constructor(
    message: string,
    readonly exitCode: 0 | 2 = 2,
  ) {
    super(message);
    this.name = 'UsageError';
  }
}

/**
 * parseArgs with the tools' convention: every command takes `--help`/`-h`, and an unknown option,
 * a missing value or a stray positional becomes a UsageError that shows the usage.
 */
export function parseCli<T extends ParseArgsConfig>(usage: string, config: T): ReturnType<typeof parseArgs<T>> {
  let parsed;
  try {
    parsed = parseArgs({ ...config, options: { ...config.options, help: { type: 'boolean', short: 'h' } } });
  } catch (err) {
    throw new UsageError(`${err instanceof Error ? err.message : String(err)}\n${usage}`);
  }
  if ((parsed.values as { help?: unknown }).help === true) throw new UsageError(usage, 0);
  // The caller's options plus `help`, which it never reads.
  return parsed as unknown as ReturnType<typeof parseArgs<T>>;
}

export interface RunCliOptions {
  /** The exit code of an error other than a UsageError. @default 1 */
  failureCode?: number;
  /** End the process when main settles (a tool that leaves connections or timers behind). @default false */
  exit?: boolean;
}

/**
 * Runs a tool's `main` on the process's arguments and sets the exit code it returns. A UsageError
 * is printed as it is; any other error as `<name> failed: <message>` (the messages name the file at
 * fault), with `failureCode`.
 */
export function runCli(
  name: string,
  main: (argv: string[]) => Promise<number>,
  { failureCode = 1, exit = false }: RunCliOptions = {},
): void {
  const end = (code: number) => {
    process.exitCode = code;
    if (exit) process.exit(code);
  };
  main(process.argv.slice(2)).then(end, (err: unknown) => {
    if (err instanceof UsageError) {
      (err.exitCode === 0 ? process.stdout : process.stderr).write(`${err.message}\n`);
      end(err.exitCode);
      return;
    }
    process.stderr.write(`${name} failed: ${err instanceof Error ? err.message : String(err)}\n`);
    end(failureCode);
  });
}

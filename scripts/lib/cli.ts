// What the repository's command-line scripts share: reading a file that may not exist, and
// running `main` with the exit-code convention (0 done, 1 failed, 2 usage error).
import { readFile } from 'node:fs/promises';

/** A file's text, or undefined when it cannot be read (it does not exist yet). */
export async function readIfExists(file: string): Promise<string | undefined> {
  try {
    return await readFile(file, 'utf8');
  } catch {
    return undefined;
  }
}

/**
 * Runs a script's `main` on the process's arguments and sets the exit code it returns. An error
 * it throws is printed as `<name> failed: <message>` (the messages name the file at fault) and
 * exits with `failureCode`.
 */
export function runCli(name: string, main: (argv: string[]) => Promise<number>, failureCode = 1): void {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      process.stderr.write(`${name} failed: ${err instanceof Error ? err.message : String(err)}\n`);
      process.exitCode = failureCode;
    },
  );
}

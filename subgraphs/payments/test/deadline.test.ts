// A provider call's deadline fires even when the garbage collector runs meanwhile. With
// AbortSignal.any([AbortSignal.timeout(ms), ...]) it did not (nodejs/node#57736): the worker kept
// such a call in flight for ever, and its checkout never ended (the crash suite's stuck sagas).
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { withDeadline } from '../src/provider/deadline';

const run = promisify(execFile);

describe('withDeadline', () => {
  it('times out every call that never answers, under forced garbage collection', async () => {
    const { stdout } = await run(process.execPath, ['--expose-gc', '--import', 'tsx', path.join(__dirname, 'fixtures', 'deadline-gc.ts')]);
    expect(JSON.parse(stdout)).toEqual({ calls: 200, timedOut: 200 });
  });

  it("answers with the call's own result, and a stop aborts at once", async () => {
    await expect(
      withDeadline(
        1000,
        new AbortController().signal,
        async () => 'ok',
        () => new Error('timeout'),
      ),
    ).resolves.toBe('ok');
    const stop = new AbortController();
    let seen: AbortSignal | undefined;
    const call = withDeadline(
      10_000,
      stop.signal,
      (signal) => {
        seen = signal;
        return new Promise<never>(() => undefined);
      },
      () => new Error('timeout'),
    );
    stop.abort();
    await expect(call).rejects.toThrow('timeout');
    expect(seen?.aborted).toBe(true);
    const stopped = new AbortController();
    stopped.abort();
    await expect(
      withDeadline(
        10_000,
        stopped.signal,
        async () => 'late',
        () => new Error('stopped'),
      ),
    ).rejects.toThrow('stopped');
  });
});

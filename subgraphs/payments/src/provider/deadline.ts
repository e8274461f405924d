/**
 * Runs `fn` with a signal that aborts after `ms` or when `stop` aborts, and rejects with
 * `timeout()` then, whatever `fn` does: a provider that never answers holds nothing up.
 *
 * Its own AbortController and timer, not `AbortSignal.any([AbortSignal.timeout(ms), stop])`: in
 * Node 20 the timeout signal inside a composite one can be garbage-collected before it fires
 * (nodejs/node#57736, fix not released), and the call then never times out. That left payment
 * operations in flight for ever under load (the crash suite's stuck sagas); test/deadline.test.ts
 * shows both under forced garbage collection.
 */
export function withDeadline<T>(ms: number, stop: AbortSignal, fn: (signal: AbortSignal) => Promise<T>, timeout: () => Error): Promise<T> {
  const controller = new AbortController();
  const abort = () => controller.abort();
  const timer = setTimeout(abort, ms);
  stop.addEventListener('abort', abort, { once: true });
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(timeout());
    if (stop.aborted) return onAbort();
    controller.signal.addEventListener('abort', onAbort, { once: true });
    Promise.resolve()
      .then(() => fn(controller.signal))
      .then(resolve, reject);
  }).finally(() => {
    clearTimeout(timer);
    stop.removeEventListener('abort', abort);
  });
}

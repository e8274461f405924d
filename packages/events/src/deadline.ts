/**
 * Rejects after `ms` unless `promise` settles first; the timer never outlives the race. The work
 * is abandoned, not cancelled: it goes on, and a rejection after the deadline is handled by the race.
 */
export function withTimeout<T>(promise: Promise<T>, ms: number, failure: () => string | Error): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const reason = failure();
      reject(typeof reason === 'string' ? new Error(reason) : reason);
    }, ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

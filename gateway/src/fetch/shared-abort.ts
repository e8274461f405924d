/**
 * The abort signal of a subgraph request that serves several callers (in-flight sharing, merged
 * fetches): it is aborted once every caller's client has gone away, and never while one still
 * waits. A caller without a signal keeps it alive for good.
 */
export class SharedAbort {
  private readonly controller = new AbortController();
  private live = 0;
  private pinned = false;
  readonly signal = this.controller.signal;

  join(signal: AbortSignal | undefined): void {
    if (!signal) {
      this.pinned = true;
      return;
    }
    if (signal.aborted) return;
    this.live++;
    signal.addEventListener(
      'abort',
      () => {
        this.live--;
        if (this.live === 0 && !this.pinned) this.controller.abort(signal.reason);
      },
      { once: true },
    );
  }
}

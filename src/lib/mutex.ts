// A FIFO async mutex: callers run one at a time in arrival order.
export class Mutex {
  #tail: Promise<unknown> = Promise.resolve();
  #pending = 0;

  /** True when nobody holds or waits for the lock. */
  idle(): boolean {
    return this.#pending === 0;
  }

  run<T>(fn: () => Promise<T>): Promise<T> {
    this.#pending++;
    const result = this.#tail.then(fn);
    this.#tail = result.then(
      () => this.#pending--,
      () => this.#pending--,
    );
    return result;
  }
}

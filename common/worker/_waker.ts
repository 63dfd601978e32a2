// A sleep that something else can cut short: the worker loop sleeps between polls and wakes
// as soon as an item finishes or a shutdown is requested. Timers are always cleared, so tests
// with Deno's leak sanitizers stay clean.

export class Waker {
  #wakeNow: (() => void) | null = null;
  // A wake that arrived while nobody was waiting: the next wait returns at once, so an event
  // between two checks of the loop is not lost.
  #pending = false;

  wake(): void {
    if (this.#wakeNow) this.#wakeNow();
    else this.#pending = true;
  }

  wait(ms: number): Promise<void> {
    if (this.#pending) {
      this.#pending = false;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.#wakeNow = null;
        resolve();
      };
      const timer = setTimeout(done, Math.max(0, ms));
      this.#wakeNow = done;
    });
  }
}

/** `base` ± 25 %, so that many idle workers do not poll in lockstep. */
export function jitter(base: number): number {
  return base * (0.75 + Math.random() * 0.5);
}

// Bounded concurrency for LLM calls: several episodes may be in flight, but a server (or a rate limit)
// only takes so many requests at once.

export class Semaphore {
  private active = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(private max: number) {}

  get limit(): number {
    return this.max;
  }

  /** Change the bound; raising it lets waiting calls start now. */
  set limit(n: number) {
    this.max = Math.max(1, Math.floor(n));
    this.wake();
  }

  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.active < this.max) this.active++;
    else await new Promise<void>((resolve) => this.waiting.push(resolve)); // wake() takes the slot for us
    try {
      return await fn();
    } finally {
      this.active--;
      this.wake();
    }
  }

  private wake(): void {
    while (this.active < this.max && this.waiting.length) {
      this.active++;
      this.waiting.shift()!();
    }
  }
}

/** The one limit every remote LLM client shares (the identify settings set it). */
export const llmSlots = new Semaphore(4);

import type { Logger } from 'pino';

/**
 * Reports documents done at intervals: a JSON log line, and on a terminal a
 * progress bar on stderr that the log lines would otherwise scroll away.
 */
export class Progress {
  private done = 0;
  private readonly started = Date.now();
  // Unknown until the reader reports one: a stream has no size.
  private fraction: number | undefined;
  private readonly timer: NodeJS.Timeout;
  private readonly bar: boolean;
  private lastDraw = 0;

  constructor(
    private readonly log: Logger,
    private readonly what: string,
    intervalSeconds: number,
    private readonly total?: number,
  ) {
    this.bar = Boolean(process.stderr.isTTY);
    this.timer = setInterval(() => this.report(), intervalSeconds * 1000);
    this.timer.unref();
  }

  add(n = 1): void {
    this.done += n;
  }

  /** Sets the share of the input read so far, from 0 to 1. */
  setFraction(fraction: number): void {
    this.fraction = fraction;
    // Redrawing on every row would cost more than reading it.
    if (this.bar && Date.now() - this.lastDraw > 200) this.draw();
  }

  get count(): number {
    return this.done;
  }

  get rate(): number {
    return this.done / Math.max(0.001, (Date.now() - this.started) / 1000);
  }

  stop(): void {
    clearInterval(this.timer);
    if (this.bar) process.stderr.write('\r\x1b[K');
  }

  private report(): void {
    if (this.bar) {
      this.draw();
      return;
    }
    this.log.info(
      {
        [this.what]: this.done,
        ...(this.total !== undefined ? { total: this.total } : {}),
        perSecond: Math.round(this.rate * 10) / 10,
        ...(this.fraction !== undefined
          ? { read: Math.round(this.fraction * 1000) / 10 }
          : {}),
      },
      'progress',
    );
  }

  private draw(): void {
    this.lastDraw = Date.now();
    const width = 30;
    let barText = '';
    if (this.fraction !== undefined) {
      const filled = Math.round(this.fraction * width);
      const bar = '#'.repeat(filled) + '-'.repeat(width - filled);
      const pct = (this.fraction * 100).toFixed(1).padStart(5);
      barText = `[${bar}] ${pct}% `;
    }
    process.stderr.write(
      `\r${barText}${this.done} ${this.what} ${this.rate.toFixed(1)}/s\x1b[K`,
    );
  }
}

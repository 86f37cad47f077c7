import type { Worker } from 'bullmq';

/** How long the health check waits for each Redis command, in milliseconds. */
export const HEALTH_TIMEOUT_MS = 1000;

/** Sources the health check inspects. */
export interface HealthSources {
  /** The BullMQ worker, whose `closing` is set once its close has begun. */
  worker: Pick<Worker, 'isRunning' | 'isPaused' | 'closing'>;
  /** Sends PING to the worker's Redis. */
  ping: () => Promise<unknown>;
  /**
   * Returns the error of the connection's last failed attempt to connect,
   * or undefined once it is connected. A PING waits while the client
   * reconnects, so its timeout alone would hide a refused connection.
   */
  connectionError?: () => string | undefined;
  /** Returns the number of jobs waiting to be taken by any worker. */
  waitingJobs: () => Promise<number>;
  /** Returns when the worker last started or finished a job, in epoch ms. */
  lastActivity: () => number;
  /** Stall limit: seconds without a job start or finish while jobs wait. */
  stallSeconds: number;
  /** Clock in epoch ms. @defaultValue Date.now */
  now?: () => number;
}

/** Result of one health check, sent as the JSON body of /health. */
export interface HealthReport {
  status: 'ok' | 'unavailable';
  /** Reason the worker is not taking jobs, set when status is `unavailable`. */
  reason?: string;
  /** Jobs waiting in the queue, when the check got that far. */
  waitingJobs?: number;
  /** Seconds since the worker last started or finished a job. */
  secondsSinceLastJob?: number;
}

/**
 * Decides whether a worker is taking jobs: its BullMQ worker runs and is
 * neither closing nor paused, Redis replies to PING, and it has not gone
 * `stallSeconds` without starting or finishing a job while jobs wait.
 */
export class HealthCheck {
  private waitingSince: number | undefined;
  private readonly now: () => number;

  constructor(private readonly sources: HealthSources) {
    this.now = sources.now ?? Date.now;
  }

  /** Runs the checks in order and reports the first one that fails. */
  async check(): Promise<HealthReport> {
    const { worker } = this.sources;
    if (worker.closing) return unavailable('worker is closing or closed');
    if (!worker.isRunning()) return unavailable('worker is not running');
    if (worker.isPaused()) return unavailable('worker is paused');

    try {
      await withTimeout(this.sources.ping(), HEALTH_TIMEOUT_MS, 'Redis PING');
    } catch (err) {
      const cause = this.sources.connectionError?.();
      const reason = failure('Redis PING', err);
      return unavailable(
        cause === undefined
          ? reason
          : `${reason}; last connection error: ${cause}`,
      );
    }

    let waitingJobs: number;
    try {
      waitingJobs = await withTimeout(
        this.sources.waitingJobs(),
        HEALTH_TIMEOUT_MS,
        'reading queue job counts',
      );
    } catch (err) {
      return unavailable(failure('reading queue job counts', err));
    }

    return this.checkStall(waitingJobs);
  }

  private checkStall(waitingJobs: number): HealthReport {
    const now = this.now();
    const lastActivity = this.sources.lastActivity();
    // Jobs that arrived a moment ago have not had a chance to start, so the
    // stall clock starts at the first check that saw jobs waiting.
    // NOTE: the waiting count is queue-wide, so a hung worker whose peers
    // keep the queue empty is not reported as stalled.
    if (waitingJobs === 0) this.waitingSince = undefined;
    else this.waitingSince ??= now;
    const stalledMs = now - Math.max(lastActivity, this.waitingSince ?? now);
    const report: HealthReport = {
      status: 'ok',
      waitingJobs,
      secondsSinceLastJob: seconds(now - lastActivity),
    };
    if (waitingJobs > 0 && stalledMs > this.sources.stallSeconds * 1000) {
      report.status = 'unavailable';
      report.reason =
        `no job started or finished for ${seconds(stalledMs)} s while ` +
        `${waitingJobs} jobs wait (limit ${this.sources.stallSeconds} s)`;
    }
    return report;
  }
}

/**
 * Resolves or rejects as promise does, or rejects after ms with an error
 * naming the operation. The promise itself keeps running.
 */
export async function withTimeout<T>(
  promise: Promise<T>,
  ms: number,
  operation: string,
): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`${operation} timed out after ${ms} ms`)),
      ms,
    );
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

function unavailable(reason: string): HealthReport {
  return { status: 'unavailable', reason };
}

/** Describes a failed operation. A timeout's message already names it. */
function failure(operation: string, err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  return message.startsWith(operation)
    ? message
    : `${operation} failed: ${message}`;
}

function seconds(ms: number): number {
  return Math.round(ms / 100) / 10;
}

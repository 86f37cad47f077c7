import type { Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';

// Interval in ms between the checks by which a stopping worker finds that
// it has no active jobs while Redis is unreachable, and then stops without
// waiting for close().
const IDLE_CHECK_MS = 250;

/**
 * The active jobs of a worker and whether it ever reached Redis, read by
 * {@link shutDown}. A job counts as active from BullMQ's `active` event,
 * when it is moved to active in Redis, until its `completed` or `failed`
 * event, which BullMQ emits only after writing the outcome to Redis.
 */
export class WorkerActivity {
  private readonly active = new Set<string>();
  private ready = false;

  constructor(
    worker: Worker,
    private readonly connection: Redis,
  ) {
    // BullMQ emits `ready` once both of the worker's connections are up.
    worker.once('ready', () => (this.ready = true));
    worker.on('active', (job) => this.active.add(job.id ?? ''));
    worker.on('completed', (job) => this.active.delete(job.id ?? ''));
    worker.on('failed', (job) => {
      if (job) this.active.delete(job.id ?? '');
    });
  }

  /** Number of jobs moved to active and not yet completed or failed. */
  get activeJobs(): number {
    return this.active.size;
  }

  /** Whether the worker's connections to Redis were ever both ready. */
  get reachedRedis(): boolean {
    return this.ready;
  }

  /**
   * Whether the worker has no active jobs and its connection to Redis is
   * down, so that closing it would only wait for Redis.
   */
  get idleWithoutRedis(): boolean {
    return this.active.size === 0 && this.connection.status !== 'ready';
  }
}

/**
 * Stops the worker taking jobs and waits for its active jobs, for at most
 * graceSeconds or until endGrace is aborted. A worker that has no active
 * jobs while Redis is unreachable stops within IDLE_CHECK_MS instead,
 * because BullMQ's close() would wait for Redis to come back.
 *
 * @returns 0 when the worker closed, or stopped without active jobs after
 *   reaching Redis; else 1. After 1 the worker is still closing and its
 *   jobs may still run, so the caller must end the process. The jobs stay
 *   active in Redis until their locks expire, and then another worker runs
 *   them again.
 */
export async function shutDown(
  worker: Worker,
  activity: WorkerActivity,
  graceSeconds: number,
  reason: string,
  endGrace: AbortSignal,
  log: Logger,
): Promise<number> {
  log.info(
    { reason, graceSeconds, activeJobs: activity.activeJobs },
    'worker stopping; finishing active jobs',
  );
  // NOTE: BullMQ 6.7 ignores a later close(true) once close() has begun, so
  // no forced close follows. With BullMQ 6.7.6, close() also never resolves
  // for a worker that has not reached Redis yet.
  const clean = worker.close().then(() => 0);
  let timer: NodeJS.Timeout | undefined;
  let idleCheck: NodeJS.Timeout | undefined;
  let onEndGrace: (() => void) | undefined;
  const cut = new Promise<number>((resolve) => {
    timer = setTimeout(() => {
      log.warn(
        { graceSeconds, activeJobs: activity.activeJobs },
        'grace period over; active jobs will run again on another worker',
      );
      resolve(1);
    }, graceSeconds * 1000);
    idleCheck = setInterval(() => {
      if (activity.idleWithoutRedis) resolve(stopIdle(activity, log));
    }, IDLE_CHECK_MS);
    onEndGrace = () => {
      log.warn(
        { signal: String(endGrace.reason) },
        'second signal; active jobs will run again on another worker',
      );
      resolve(1);
    };
    endGrace.addEventListener('abort', onEndGrace, { once: true });
  });
  const code = await Promise.race([clean, cut]);
  clearTimeout(timer);
  clearInterval(idleCheck);
  if (onEndGrace) endGrace.removeEventListener('abort', onEndGrace);
  log.info({ reason, code }, 'worker stopped');
  return code;
}

/**
 * Logs the stop of a worker without active jobs while Redis is unreachable.
 *
 * @returns 0 when the worker reached Redis before, because none of its jobs
 *   is left unfinished; 1 when it never did, so that a wrong REDIS_URL
 *   shows in the exit code
 */
function stopIdle(activity: WorkerActivity, log: Logger): number {
  if (activity.reachedRedis) {
    log.warn(
      { activeJobs: 0 },
      'Redis unreachable and no active jobs; stopping without closing the worker',
    );
    return 0;
  }
  log.error(
    { activeJobs: 0 },
    'worker never reached Redis; stopping without closing it. Check REDIS_URL and that the server is running',
  );
  return 1;
}

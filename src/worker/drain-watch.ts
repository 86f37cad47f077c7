import type { Queue, Worker } from 'bullmq';
import type { Logger } from 'pino';

// Each poll is one MULTI of job counts, a few cheap commands for Redis, so
// polling this often costs little.
const DRAIN_POLL_MS = 50;

// Time in ms that a worker which has found neither jobs nor producers waits
// before it stops, so that a producer started beside it has time to connect
// and register.
export const START_GRACE_MS = 5_000;

// Time in ms after which a worker that finds only active jobs, which may be
// jobs of a worker that died, logs what it is waiting for.
const ACTIVE_ONLY_LOG_MS = 10_000;

/** Options of {@link watchDrained}. */
export interface DrainOptions {
  /** Counts the producers still queuing; none when not given. */
  countProducers?: () => Promise<number>;
  /** Overrides START_GRACE_MS. */
  startGraceMs?: number;
}

/**
 * Polls the queue every DRAIN_POLL_MS and calls onDrained once a poll finds
 * no producer queuing into it and then no jobs left. Until a poll has found
 * jobs or a producer, the worker also waits out START_GRACE_MS from its
 * start, since a producer started at the same time registers only once it
 * has connected to Redis. Producers enter their run lock in a registry (see
 * countProducers in run-store.ts), so neither a pause between an enqueue's
 * batches nor a slow input pipe is taken for the end of the work. Once a poll finds no waiting or delayed jobs, each job
 * the worker finishes starts a poll at once, so the worker stops when its
 * last job finishes, not up to DRAIN_POLL_MS later. The delayed job that a
 * job scheduler keeps for its next run does not count, or a queue with a
 * scheduler would never be drained.
 *
 * @returns a function that stops the polls
 */
export function watchDrained(
  queue: Queue,
  worker: Worker,
  onDrained: () => void,
  log: Logger,
  options: DrainOptions = {},
): () => void {
  const countProducers = options.countProducers ?? (async () => 0);
  const startGraceMs = options.startGraceMs ?? START_GRACE_MS;
  const startedAt = Date.now();
  let sawWork = false;
  let graceLogged = false;
  let activeOnlySince: number | undefined;
  let activeOnlyLogged = false;
  let onlyActiveLeft = false;
  let polling = false;
  let pollAgain = false;
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let waitLogged = false;

  const poll = async () => {
    // Producers first: one that has left by now added all its jobs before,
    // so the counts that follow include them.
    const producers = await countProducers();
    const { active, others } = await countJobsLeft(queue);
    onlyActiveLeft = others === 0;
    if (active + others + producers > 0) sawWork = true;
    if (active > 0 && others === 0) {
      activeOnlySince ??= Date.now();
      const waited = Date.now() - activeOnlySince;
      if (!activeOnlyLogged && waited >= ACTIVE_ONLY_LOG_MS) {
        log.info(
          { active },
          'only active jobs left; jobs of a worker that died run again 60 to 90 s after it died',
        );
        activeOnlyLogged = true;
      }
    } else {
      activeOnlySince = undefined;
      activeOnlyLogged = false;
    }
    if (active + others > 0) {
      waitLogged = false;
      return;
    }
    if (producers > 0) {
      if (!waitLogged) {
        log.info({ producers }, 'queue empty; waiting for producers to finish');
        waitLogged = true;
      }
      return;
    }
    const graceLeft = startedAt + startGraceMs - Date.now();
    if (sawWork || graceLeft <= 0) {
      onDrained();
    } else if (!graceLogged) {
      log.info(
        { seconds: Math.ceil(graceLeft / 1000) },
        'queue empty and no producer; waiting for one to start',
      );
      graceLogged = true;
    }
  };

  // Polls run one at a time, so a late reply never overtakes a newer one.
  const pollNow = () => {
    if (stopped) return;
    if (polling) {
      pollAgain = true;
      return;
    }
    clearTimeout(timer);
    polling = true;
    void poll()
      .catch((err: unknown) => log.warn({ err }, 'queue poll failed'))
      .finally(() => {
        polling = false;
        if (stopped) return;
        if (pollAgain) {
          pollAgain = false;
          pollNow();
        } else {
          timer = setTimeout(pollNow, DRAIN_POLL_MS);
        }
      });
  };

  const onJobDone = () => {
    sawWork = true;
    if (onlyActiveLeft) pollNow();
  };
  worker.on('completed', onJobDone);
  worker.on('failed', onJobDone);
  timer = setTimeout(pollNow, DRAIN_POLL_MS);

  return () => {
    stopped = true;
    clearTimeout(timer);
    worker.off('completed', onJobDone);
    worker.off('failed', onJobDone);
  };
}

/**
 * Counts the queue's active jobs and the others still to run: waiting,
 * prioritized, delayed and waiting for children, without the delayed jobs
 * that job schedulers keep for their next run.
 */
async function countJobsLeft(
  queue: Queue,
): Promise<{ active: number; others: number }> {
  const counts = await queue.getJobCounts(
    'waiting',
    'active',
    'delayed',
    'prioritized',
    'waiting-children',
  );
  const total = Object.values(counts).reduce((a, b) => a + b, 0);
  const others =
    total - counts.active - (await scheduledJobs(queue, counts.delayed));
  return { active: counts.active, others };
}

/**
 * Counts the delayed jobs that job schedulers added for their next run. A
 * scheduled job waiting to be retried has attempts made, so it still counts
 * as work left.
 */
async function scheduledJobs(queue: Queue, delayed: number): Promise<number> {
  if (delayed === 0) return 0;
  // A BullMQ 6 job scheduler keeps one delayed job for its next run, so with
  // more delayed jobs than schedulers the queue has work left either way.
  const schedulers = await queue.getJobSchedulersCount();
  if (schedulers === 0 || delayed > schedulers) return 0;
  const jobs = await queue.getDelayed(0, delayed - 1);
  const next = jobs.filter((job) => job.repeatJobKey && !job.attemptsMade);
  return next.length;
}

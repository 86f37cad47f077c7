import type { Queue, Worker } from 'bullmq';
import type { Logger } from 'pino';

// Each poll is one MULTI of job counts, a few cheap commands for Redis, so
// polling this often costs little.
const DRAIN_POLL_MS = 50;

// Time in ms that the queue must stay empty to count as drained, which is
// the span of three polls in a row.
const QUIET_MS = 2 * DRAIN_POLL_MS;

/**
 * Polls the queue every DRAIN_POLL_MS and calls onDrained once every poll
 * for QUIET_MS has found it empty, which takes three empty polls in a row.
 * A producer's short pause between batches is thus not taken for the end of
 * the work, nor is a longer one: while countProducers finds a producer
 * queuing, as when its input is a slow pipe, the queue does not count as
 * empty. Once a poll finds no waiting or delayed jobs, each job the
 * worker finishes starts a poll at once, so the quiet time starts when the
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
  countProducers: () => Promise<number> = async () => 0,
): () => void {
  let emptySince: number | undefined;
  let onlyActiveLeft = false;
  let polling = false;
  let pollAgain = false;
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let waitLogged = false;

  const poll = async () => {
    const started = Date.now();
    // Jobs that a producer adds just before it leaves may be missed by
    // this poll's counts, but the next poll, still within QUIET_MS, counts
    // them.
    const [producers, { active, others }] = await Promise.all([
      countProducers(),
      countJobsLeft(queue),
    ]);
    onlyActiveLeft = others === 0;
    if (active + others > 0) {
      emptySince = undefined;
      waitLogged = false;
      return;
    }
    if (producers > 0) {
      emptySince = undefined;
      if (!waitLogged) {
        log.info({ producers }, 'queue empty; waiting for producers to finish');
        waitLogged = true;
      }
      return;
    }
    emptySince ??= started;
    if (started - emptySince >= QUIET_MS) onDrained();
  };

  // Polls run one at a time, so their results arrive in the order they
  // were read and emptySince never predates a poll that found jobs.
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

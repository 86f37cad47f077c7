import { setTimeout as delay } from 'node:timers/promises';

import type { JobType, Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';

import { chunkLengthFor } from '../chunking/plan.js';
import { modelPath, type Settings } from '../config/config.js';
import { readModelFolder } from '../model/model-folder.js';
import { isJobOfRun } from '../producer/extract-jobs.js';
import { checkRedis, connectRedis } from '../queue/connection.js';
import { loadBullmq } from '../queue/load-packages.js';

/** A Redis connection and the BullMQ queue on it, closed together. */
export interface QueueSession {
  redis: Redis;
  queue: Queue;
  close(): Promise<void>;
}

// Approximate cap on the entries of the queue's events stream, which BullMQ
// trims as it adds events. An entry takes about 110 bytes of Redis memory
// (bench/redis-memory.ts), so the stream stays near 1 MiB however many jobs
// a run has. This is BullMQ 6's default, set here so the bound does not
// change with the BullMQ version.
const EVENTS_MAX_LEN = 10_000;

// Reconnect attempts a long one-shot command makes before its pending
// commands fail: with connectRedis's back-off, about 40 s without Redis.
const RIDE_THROUGH_RETRIES = 20;

/** Options of {@link openQueue}. */
export interface OpenQueueOptions {
  /**
   * Whether the command only reads. BullMQ otherwise writes the queue's
   * `meta` key when it opens a queue, which creates that key under a
   * prefix that had none.
   * @defaultValue false
   */
  readOnly?: boolean;
}

/**
 * Opens the configured queue. A one-shot command checks Redis first and
 * fails within redisTimeoutSeconds; a worker keeps retrying through Redis
 * restarts. A long one-shot command (enqueue, scan) fails fast only at
 * start, then waits through a Redis restart of up to about 40 s.
 *
 * NOTE: no Redis command has a time limit once the check has passed, so a
 * Redis that stops replying without closing the connection, such as a
 * paused process, blocks the command until it replies again.
 *
 * @throws RedisUnavailableError when a one-shot command cannot reach Redis
 */
export async function openQueue(
  settings: Settings,
  log: Logger,
  oneShot: boolean,
  longRunning = false,
  options: OpenQueueOptions = {},
): Promise<QueueSession> {
  const replyTimeoutMs = settings.redisTimeoutSeconds * 1000;
  const redis = connectRedis(settings.redisUrl, log, {
    oneShot,
    replyTimeoutMs,
  });
  if (oneShot) await checkRedis(redis, settings.redisUrl, replyTimeoutMs);
  // ioredis reads this option at every reconnect attempt.
  if (oneShot && longRunning) {
    redis.options.maxRetriesPerRequest = RIDE_THROUGH_RETRIES;
  }
  const bullmq = loadBullmq();
  const queue = new bullmq.Queue(settings.queue, {
    connection: redis,
    prefix: settings.prefix,
    streams: { events: { maxLen: EVENTS_MAX_LEN } },
    skipMetasUpdate: options.readOnly ?? false,
  });
  // The connection logs its own errors, rate-limited; without a listener
  // BullMQ would print each one to stderr unformatted.
  queue.on('error', () => {});
  return {
    redis,
    queue,
    async close() {
      // Closing the queue waits for Redis, so a Redis that is down gets 2 s.
      // The timer is unref'd, or it would hold the process open for those
      // 2 s after every command.
      await Promise.race([
        queue.close(),
        delay(2000, undefined, { ref: false }),
      ]);
      redis.disconnect();
    },
  };
}

/**
 * Returns the chunk length the configured model and schema allow, in
 * characters. Only model.json is read: the files' hashes are the workers'
 * check, and hashing them would add about 10 ms to every enqueue.
 */
export function configuredChunkLength(settings: Settings): number {
  const folder = readModelFolder(modelPath(settings), false);
  return chunkLengthFor(
    folder.manifest.max_seq_len,
    settings.schema,
    settings.chunkChars,
    settings.chunkOverlap,
  );
}

/** Ids of a run's jobs that are still to be processed. */
export interface RunJobs {
  /** Waiting, prioritized or delayed, such as a job waiting for a retry. */
  waiting: string[];
  /** Held by a worker; these cannot be removed. */
  active: string[];
}

// Job ids read per request while looking for a run's jobs.
const JOB_PAGE = 10_000;

/**
 * Finds a run's jobs that are waiting or active by reading those lists of
 * the queue in pages. The lists are read in the order jobs move through
 * them (delayed, waiting, active), so a job that moves on while they are
 * read is found in the next one.
 */
export async function findRunJobs(queue: Queue, run: string): Promise<RunJobs> {
  // NOTE: a job that fails while the lists are read and goes back to
  // delayed for its retry can be missed.
  const waiting = new Set<string>();
  const waitingStates: JobType[] = ['delayed', 'prioritized', 'waiting'];
  for (const state of waitingStates) {
    for (const id of await listJobIds(queue, state)) {
      if (isJobOfRun(id, run)) waiting.add(id);
    }
  }
  const active = (await listJobIds(queue, 'active')).filter((id) =>
    isJobOfRun(id, run),
  );
  for (const id of active) waiting.delete(id);
  return { waiting: [...waiting], active };
}

async function listJobIds(queue: Queue, state: JobType): Promise<string[]> {
  const ids: string[] = [];
  for (let start = 0; ; start += JOB_PAGE) {
    const page = await queue.getRanges([state], start, start + JOB_PAGE - 1);
    ids.push(...page);
    if (page.length < JOB_PAGE) return ids;
  }
}

import { join } from 'node:path';

import type { Queue } from 'bullmq';
import type { Logger } from 'pino';

import { redactUrl, type Settings } from '../config/config.js';
import { InputError } from '../errors/errors.js';
import { checkInput } from '../producer/csv-source.js';
import { enqueueFile, type EnqueueSummary } from '../producer/enqueue.js';
import { lockRun, releaseRunLocks, unlockRun } from '../producer/run-lock.js';
import { startEngine, type Engine } from '../pipeline/engine.js';
import { releaseDocuments } from '../queue/archive-store.js';
import { checkRedis, connectRedis } from '../queue/connection.js';
import { loadBullmq, loadIoredis } from '../queue/load-packages.js';
import type { RedisLock } from '../queue/redis-lock.js';
import { checkRunName, RunStore } from '../queue/run-store.js';
import {
  exitProcess,
  onePositional,
  requiredOption,
  type Invocation,
} from './main.js';
import {
  configuredChunkLength,
  findRunJobs,
  openQueue,
} from './queue-session.js';
import {
  allRejectedError,
  csvOptions,
  EXIT_WAIT_MS,
} from './extract-command.js';
import { exitOnInterrupt } from './interrupts.js';

// How long an interrupted enqueue waits for Redis to release its producer
// lock, in ms. Past that the lock expires on its own within a minute.
const LOCK_RELEASE_WAIT_MS = 2000;

export async function enqueue(
  inv: Invocation,
  settings: Settings,
  log: Logger,
): Promise<number> {
  const input = onePositional(inv, 'input CSV file');
  checkInput(input);
  const run = checkRunName(
    typeof inv.values.run === 'string' ? inv.values.run : dateRunName(),
  );
  const chunkLength = configuredChunkLength(settings);
  const { redis, queue, close } = await openQueue(settings, log, true, true);
  const removeHandlers = exitOnInterrupt(log, {
    // Released at once, the run's producer lock frees the run for the next
    // enqueue and the draining workers that wait for this producer.
    stop: () => releaseRunLocks(LOCK_RELEASE_WAIT_MS),
    message: () =>
      `uie-batch: enqueue into run ${run} interrupted; the documents queued so far stay queued, and the same command queues the rest\n`,
  });
  try {
    log.info(
      { redis: redactUrl(settings.redisUrl), queue: settings.queue, run },
      'enqueue started',
    );
    const store = new RunStore(redis, settings.prefix, settings.queue, run);
    const summary = await enqueueFile(
      queue,
      store,
      input,
      csvOptions(inv),
      settings,
      chunkLength,
      log,
    );
    log.info({ run, ...summary }, 'enqueue finished');
    process.stderr.write(
      `run ${run}: ${summary.documents} documents, ${summary.chunks} chunks in ${summary.jobs} jobs queued; ` +
        `${summary.alreadyQueued} already queued` +
        (summary.retried > 0
          ? ` (${summary.retried} of them had failed chunks, queued again)`
          : '') +
        `, ${summary.rejected} rows rejected` +
        (summary.alreadyRejected > 0
          ? `, ${summary.alreadyRejected} already rejected`
          : '') +
        '\n',
    );
    checkSomeAccepted(
      input,
      summary,
      join(settings.outputDir, run, 'rejects.jsonl'),
    );
    return 0;
  } finally {
    removeHandlers();
    await close();
  }
}

/**
 * Returns today's local date as the name of a run queued without `--run`,
 * and prints that name on stderr. It is printed before any work, so a user
 * whose enqueue stops midway can still export, enqueue again or forget it.
 */
function dateRunName(): string {
  const run = localDate(new Date());
  // Intl names no zone for a TZ it does not know, such as UTC+14, which
  // the C library still applies. The offset is right either way.
  const zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
  const offset = -new Date().getTimezoneOffset();
  const sign = offset < 0 ? '-' : '+';
  const hours = String(Math.floor(Math.abs(offset) / 60)).padStart(2, '0');
  const minutes = String(Math.abs(offset) % 60).padStart(2, '0');
  const utc = `UTC${sign}${hours}:${minutes}`;
  const where =
    zone && zone !== 'Etc/Unknown' ? `time zone ${zone} (${utc})` : utc;
  process.stderr.write(
    `no --run given, so the run is named ${run}, the date today at ${where}; ` +
      `pass --run ${run} to status and export\n`,
  );
  return run;
}

/**
 * Returns the calendar date of `now` in the process's time zone (`TZ`) as
 * YYYY-MM-DD, the default run name of `enqueue`. The UTC date would name a
 * run started at 02:00 in UTC+8 after the day before.
 */
export function localDate(now: Date): string {
  const month = String(now.getMonth() + 1).padStart(2, '0');
  const day = String(now.getDate()).padStart(2, '0');
  return `${now.getFullYear()}-${month}-${day}`;
}

/**
 * Fails an enqueue that accepted no document of its file but rejected rows.
 * A document already queued from the file by an earlier enqueue counts as
 * accepted.
 *
 * @throws InputError naming the input and the run's rejects file
 */
function checkSomeAccepted(
  input: string,
  summary: EnqueueSummary,
  rejectsPath: string,
): void {
  const accepted = summary.documents + summary.alreadyQueued;
  const rejected = summary.rejected + summary.alreadyRejected;
  if (accepted > 0 || rejected === 0) return;
  throw allRejectedError(input, rejected, rejectsPath, 'queued');
}

export async function work(
  inv: Invocation,
  settings: Settings,
  log: Logger,
): Promise<number> {
  const exitWhenDrained = Boolean(inv.values['exit-when-drained']);
  const { engine, worker } = await startWorkerEngine(
    settings,
    log,
    exitWhenDrained,
  );
  const { redis, queue, close } = await openQueue(settings, log, false);
  let code: number;
  try {
    log.info(
      { redis: redactUrl(settings.redisUrl), queue: settings.queue },
      'connecting',
    );
    code = await worker.runWorker(
      engine,
      queue,
      redis,
      { exitWhenDrained },
      log,
    );
  } finally {
    // Jobs still running after the grace period are left for other workers.
    // Their threads get a moment to leave ONNX Runtime, because ending a
    // thread inside a run aborts the process.
    await engine.pool.destroy(EXIT_WAIT_MS);
    await close();
  }
  // BullMQ keeps reconnecting a worker that never reached Redis, because
  // its close() waits for the connection, so the process would not end by
  // itself.
  return exitProcess(log, code);
}

/**
 * Starts the engine, and loads the worker module, BullMQ and ioredis while
 * the pool threads load the model. Loaded first, those modules would delay
 * the threads' start by their load time, about 0.15 s of CPU.
 *
 * @param failFast - whether to check that Redis replies, while the
 *   threads load. A worker that runs until the queue is empty is a batch
 *   step: like enqueue, it fails at once when Redis does not reply, instead
 *   of waiting for it forever.
 * @throws the engine's start error, such as a ModelError for a damaged
 *   model, or RedisUnavailableError
 */
async function startWorkerEngine(
  settings: Settings,
  log: Logger,
  failFast: boolean,
): Promise<{ engine: Engine; worker: typeof import('../worker/worker.js') }> {
  const starting = startEngine(settings, log);
  // Without this handler, a start that fails while the modules load would
  // count as an unhandled rejection. The failure is thrown below, where the
  // start is awaited.
  starting.catch(() => {});
  let worker: typeof import('../worker/worker.js');
  try {
    worker = await import('../worker/worker.js');
    loadIoredis();
    loadBullmq();
    if (failFast) {
      const replyTimeoutMs = settings.redisTimeoutSeconds * 1000;
      const probe = connectRedis(settings.redisUrl, log, {
        oneShot: true,
        replyTimeoutMs,
      });
      await checkRedis(probe, settings.redisUrl, replyTimeoutMs);
      probe.disconnect();
    }
  } catch (err) {
    await starting.then(
      (engine) => engine.pool.destroy(EXIT_WAIT_MS),
      () => {},
    );
    throw err;
  }
  return { engine: await starting, worker };
}

// Jobs removed from the queue at once by `forget --force`.
const REMOVE_BATCH = 100;

export async function forget(
  inv: Invocation,
  settings: Settings,
  log: Logger,
): Promise<number> {
  const run = checkRunName(requiredOption(inv, 'run'));
  const force = Boolean(inv.values.force);
  // Read-only as to BullMQ's meta key, so that forgetting a run that does
  // not exist creates no key. Removing jobs does not need that key.
  const { redis, queue, close } = await openQueue(settings, log, true, false, {
    readOnly: true,
  });
  let lock: RedisLock | undefined;
  try {
    const store = new RunStore(redis, settings.prefix, settings.queue, run);
    // Held so that no producer queues into the run while it is deleted.
    lock = await lockRun(store);
    if (!(await store.exists())) {
      throw new RangeError(
        `run ${run} not found in queue ${settings.queue}; uie-batch status lists the runs`,
      );
    }
    const jobs = await findRunJobs(queue, run);
    const pending = jobs.waiting.length + jobs.active.length;
    if (pending > 0 && !force) {
      const jobsWord = pending === 1 ? 'job' : 'jobs';
      throw new RangeError(
        `run ${run} still has ${pending} waiting or active ${jobsWord}; wait until the workers finish them, or pass --force to forget it now`,
      );
    }
    // Removed first, so that no worker starts a job of a forgotten run.
    const removed = await removeJobs(queue, jobs.waiting);
    // A scan run forgotten before its export leaves documents without a
    // result, which the next pass over the archive then queues again.
    const archive = await store.archive();
    const rescanned =
      archive !== undefined && !(await store.stats()).exportedAt
        ? await releaseDocuments(
            redis,
            settings.prefix,
            settings.queue,
            archive,
            store.documents(),
          )
        : 0;
    await store.clear();
    log.info(
      {
        run,
        removedJobs: removed,
        activeJobs: jobs.active.length,
        rescanDocuments: rescanned,
      },
      'run forgotten',
    );
    process.stderr.write(
      `run ${run}: Redis records deleted` +
        (removed > 0 ? `, ${removed} waiting jobs removed` : '') +
        (jobs.active.length > 0
          ? `, ${jobs.active.length} active jobs left to finish`
          : '') +
        (rescanned > 0
          ? `, ${rescanned} documents to be queued again by the next scan of its archive`
          : '') +
        `; files in ${settings.outputDir} are kept\n`,
    );
    return 0;
  } finally {
    // A lock that cannot be released expires within a minute.
    if (lock) await unlockRun(lock).catch(() => {});
    await close();
  }
}

/** Removes jobs from the queue and returns how many were removed. */
async function removeJobs(queue: Queue, ids: string[]): Promise<number> {
  let removed = 0;
  for (let i = 0; i < ids.length; i += REMOVE_BATCH) {
    const batch = ids.slice(i, i + REMOVE_BATCH);
    // remove() resolves to 0 for a job a worker took meanwhile.
    const codes = await Promise.all(batch.map((id) => queue.remove(id)));
    removed += codes.filter((code) => code === 1).length;
  }
  return removed;
}

/** Progress of one run as `status` prints it. */
interface RunStatus {
  run: string;
  documents: number;
  chunks: number;
  done: number;
  /** Chunks that failed for good; their documents export with `error`. */
  failed: number;
  rejected: number;
  chunksPerSecond: number | null;
  etaSeconds: number | null;
}

function etaSeconds(remaining: number, rate: number | null): number | null {
  if (remaining === 0) return 0;
  if (!rate) return null;
  return Math.round(remaining / rate);
}

export async function status(
  inv: Invocation,
  settings: Settings,
  log: Logger,
): Promise<number> {
  const { redis, queue, close } = await openQueue(settings, log, true, false, {
    readOnly: true,
  });
  try {
    const counts = await queue.getJobCounts(
      'waiting',
      'active',
      'delayed',
      'completed',
      'failed',
    );
    const probe = new RunStore(
      redis,
      settings.prefix,
      settings.queue,
      'status',
    );
    const names =
      typeof inv.values.run === 'string'
        ? [checkRunName(inv.values.run)]
        : await probe.runs();
    // A misspelt run name must not read as a finished empty run.
    if (typeof inv.values.run === 'string') {
      const store = new RunStore(
        redis,
        settings.prefix,
        settings.queue,
        names[0],
      );
      if (!(await store.exists())) {
        throw new RangeError(
          `run ${names[0]} not found in queue ${settings.queue}; uie-batch status without --run lists the runs`,
        );
      }
    }
    const runs: RunStatus[] = [];
    for (const run of names) {
      const s = await new RunStore(
        redis,
        settings.prefix,
        settings.queue,
        run,
      ).stats();
      const chunks = s.chunks ?? 0;
      const done = Math.min(s.done ?? 0, chunks);
      const failed = Math.min(s.failedChunks ?? 0, chunks - done);
      const seconds =
        s.startedAt && s.updatedAt ? (s.updatedAt - s.startedAt) / 1000 : 0;
      const rate = seconds > 0 ? done / seconds : null;
      runs.push({
        run,
        documents: s.documents ?? 0,
        chunks,
        done,
        failed,
        rejected: s.rejected ?? 0,
        chunksPerSecond: rate === null ? null : Math.round(rate * 10) / 10,
        etaSeconds: etaSeconds(chunks - done - failed, rate),
      });
    }
    if (inv.values.json) {
      process.stdout.write(
        JSON.stringify({ queue: settings.queue, jobs: counts, runs }) + '\n',
      );
      return 0;
    }
    const jobs = Object.entries(counts)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ');
    const rows = runs.map(
      (r) =>
        `${r.run}\t${r.documents}\t${r.chunks}\t${r.done}\t${r.failed}\t` +
        `${r.rejected}\t` +
        `${r.chunksPerSecond ?? '-'}\t${r.etaSeconds ?? '-'}`,
    );
    process.stdout.write(
      [
        `queue ${settings.queue}: ${jobs}`,
        'run\tdocuments\tchunks\tdone\tfailed\trejected\tchunks/s\teta_s',
        ...rows,
      ].join('\n') + '\n',
    );
    return 0;
  } finally {
    await close();
  }
}

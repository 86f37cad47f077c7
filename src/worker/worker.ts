import { hostname } from 'node:os';

import type { Job, Queue, Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';

import { chunkTask } from '../chunking/plan.js';
import type { Entity } from '../engine/entity.js';
import { exportIfDrained } from '../output/auto-export.js';
import {
  PartFileError,
  PartWriter,
  type PartRecord,
} from '../output/part-files.js';
import type { Engine } from '../pipeline/engine.js';
import { scanArchive } from '../producer/archive-scan.js';
import { SCAN_JOB, type ScanJobData } from '../queue/archive-schedule.js';
import { loadBullmq } from '../queue/load-packages.js';
import {
  countProducers,
  RunStore,
  type ChunkFailure,
  type JobData,
  type QueuedChunk,
} from '../queue/run-store.js';
import { watchDrained } from './drain-watch.js';
import { serveWorkerMetrics } from './metrics-server.js';
import { WorkerMetrics } from './metrics.js';
import { shutDown, WorkerActivity } from './shut-down.js';

// Repeated worker errors are logged at most this often.
const WORKER_ERROR_LOG_INTERVAL_MS = 10_000;

/** Options of a worker process. */
export interface WorkerOptions {
  /**
   * Stop once the queue has no waiting, delayed or active jobs and no
   * producer is queuing into it.
   */
  exitWhenDrained: boolean;
}

/** Callbacks a worker runs for the chunks of an extraction job. */
interface ChunkHooks {
  /**
   * Returns whether the job belongs to the current generation of its run.
   * A job queued before its run was forgotten does not.
   */
  isCurrent: (job: JobData) => Promise<boolean>;
  /**
   * Counts chunks with results, once per job id, and exports the run if it
   * is complete.
   */
  done: (job: JobData, jobId: string | undefined) => Promise<void>;
  /**
   * Records chunks of the job that failed for good, with their errors, in
   * the run's Redis records and exports the run if it is complete. Logs its
   * own errors rather than throwing them.
   */
  failed: (job: JobData, failures: ChunkFailure[]) => Promise<void>;
}

/**
 * Takes jobs from the queue and hands their chunks to the engine's pool.
 * Jobs named `scan` instead run one scan pass of the archive folder in
 * their data. After each job, a run marked for automatic export is
 * exported once all its chunks have results.
 * Resolves when the worker has stopped: on SIGTERM or SIGINT after active
 * jobs finish (or the grace period ends, or a second signal comes, or at
 * once when it has no active jobs and Redis is unreachable), or when the
 * queue is drained.
 *
 * @returns the process exit code: 0 on a clean stop, 1 when the grace period
 *   ran out, a second signal came or the worker never reached Redis. After
 *   1, jobs may still be running in the pool, and BullMQ may still be
 *   reconnecting, so the caller must destroy the pool and end the process.
 */
export async function runWorker(
  engine: Engine,
  queue: Queue,
  connection: Redis,
  options: WorkerOptions,
  log: Logger,
): Promise<number> {
  const { settings } = engine;
  const name = `${hostname()}-${process.pid}-${Date.now().toString(36)}`;
  const workerLog = log.child({ worker: name });
  const parts = new PartWriter(settings.outputDir, name, workerLog);
  const totals = { jobs: 0, chunks: 0 };
  const metrics = new WorkerMetrics({ pool: engine.pool, queue });
  const runStore = (run: string) =>
    new RunStore(connection, settings.prefix, settings.queue, run);
  const autoExport = async (run: string) => {
    try {
      await exportIfDrained(
        connection,
        runStore(run),
        settings.outputDir,
        workerLog,
      );
    } catch (err) {
      // NOTE: no later job triggers this run's export again, so a failure
      // here leaves the run for `uie-batch export`.
      workerLog.error(
        { err, run },
        'automatic export failed; export the run with uie-batch export',
      );
    }
  };
  const hooks: ChunkHooks = {
    isCurrent: async ({ run, generation }) =>
      (await runStore(run).generation()) === generation,
    done: async ({ run, generation, chunks }, jobId) => {
      totals.jobs++;
      totals.chunks += chunks.length;
      await runStore(run).countDone(chunks.length, generation, jobId);
      metrics.countChunks('done', chunks);
      await autoExport(run);
    },
    failed: async ({ run, generation }, failures) => {
      metrics.countChunks('failed', failures);
      try {
        await runStore(run).recordFailures(failures, generation);
      } catch (err) {
        workerLog.error(
          { err, run, chunks: failures.length },
          'cannot record failed chunks in Redis',
        );
        return;
      }
      await autoExport(run);
    },
  };
  const started = Date.now();
  const progress = setInterval(() => {
    const seconds = (Date.now() - started) / 1000;
    workerLog.info(
      {
        ...totals,
        chunksPerSecond: Math.round((totals.chunks / seconds) * 10) / 10,
      },
      'progress',
    );
  }, settings.progressSeconds * 1000);
  progress.unref();

  const bullmq = loadBullmq();
  const worker = new bullmq.Worker<JobData | ScanJobData>(
    settings.queue,
    (job) =>
      job.name === SCAN_JOB
        ? runScanJob(
            job as Job<ScanJobData>,
            engine,
            queue,
            connection,
            workerLog,
          )
        : processJob(
            job as Job<JobData>,
            engine,
            parts,
            hooks,
            metrics,
            workerLog,
          ),
    {
      connection,
      prefix: settings.prefix,
      // Two jobs per thread keep a thread busy while the other job's results
      // are written and the next job is fetched.
      concurrency: engine.pool.threads * 2,
      autorun: false,
      // A job whose worker was killed is retried after its lock expires;
      // allow as many such restarts as attempts before giving up on it.
      maxStalledCount: Math.max(2, settings.attempts),
    },
  );
  worker.on('failed', (job, err) => {
    // PartWriter already logs each part file's write error once, and
    // logging it again for every failed job would flood the log.
    const level = err instanceof PartFileError ? 'debug' : 'warn';
    workerLog[level](
      { jobId: job?.id, attempts: job?.attemptsMade, err },
      'job failed',
    );
    // A job that stalled too often never reached the processor's error path.
    if (job && job.name !== SCAN_JOB && /stalled/i.test(err.message)) {
      const data = job.data as JobData;
      const records = data.chunks.map((c) => ({
        id: c.id,
        k: c.k,
        error: err.message,
      }));
      // The chunks are recorded as failed in Redis even when their error
      // lines cannot be written, so that status shows them and enqueuing
      // their file again retries them.
      void parts
        .append(data.run, data.generation, records)
        .catch((e: unknown) => {
          if (e instanceof PartFileError) return;
          workerLog.error(
            { err: e, jobId: job.id },
            'cannot write the error lines of failed chunks',
          );
        })
        .then(() =>
          hooks.failed(data, failuresOf(data.chunks, job.id, err.message)),
        );
    }
  });
  // While Redis is away BullMQ reports every reconnect attempt; the
  // connection already logs the cause, so repeats are summarised.
  let lastErrorLog = 0;
  let suppressedErrors = 0;
  worker.on('error', (err) => {
    const now = Date.now();
    if (now - lastErrorLog < WORKER_ERROR_LOG_INTERVAL_MS) {
      suppressedErrors++;
      return;
    }
    workerLog.error({ err, suppressed: suppressedErrors }, 'worker error');
    lastErrorLog = now;
    suppressedErrors = 0;
  });
  metrics.watch(worker);
  const activity = new WorkerActivity(worker, connection);
  const server = await serveWorkerMetrics(
    settings,
    worker,
    queue,
    connection,
    metrics,
    workerLog,
  ).catch(async (err: unknown) => {
    await worker.close();
    throw err;
  });

  let stopping: Promise<number> | undefined;
  let finished!: (code: number) => void;
  const done = new Promise<number>((resolve) => (finished = resolve));
  const endGrace = new AbortController();
  const stop = (reason: string): void => {
    if (stopping) return;
    stopping = shutDown(
      worker,
      activity,
      settings.shutdownGraceSeconds,
      reason,
      endGrace.signal,
      workerLog,
    );
    void stopping.then(finished);
  };
  // A second signal while stopping means the operator will not wait for
  // the active jobs.
  const onSignal = (signal: NodeJS.Signals) => {
    if (stopping) endGrace.abort(signal);
    else stop(signal);
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);

  const stopWatching = options.exitWhenDrained
    ? watchDrained(queue, worker, () => stop('drained'), workerLog, {
        countProducers: () =>
          countProducers(connection, settings.prefix, settings.queue),
      })
    : undefined;

  workerLog.info(
    { queue: settings.queue, concurrency: engine.pool.threads * 2 },
    'worker started',
  );
  void worker
    .run()
    .catch((err) => workerLog.error({ err }, 'worker stopped on error'));
  const code = await done;
  await server?.close();
  stopWatching?.();
  clearInterval(progress);
  process.off('SIGTERM', onSignal);
  process.off('SIGINT', onSignal);
  return code;
}

/** Runs one scan pass; the job's return value holds only counts. */
async function runScanJob(
  job: Job<ScanJobData>,
  engine: Engine,
  queue: Queue,
  connection: Redis,
  log: Logger,
) {
  const jobLog = log.child({ jobId: job.id });
  const { archive } = job.data;
  jobLog.info({ archive }, 'scan started');
  const summary = await scanArchive(
    queue,
    connection,
    archive,
    engine.settings,
    engine.chunkLength,
    jobLog,
  );
  jobLog.info({ ...summary }, 'scan finished');
  return summary;
}

// Runs and schemas whose untrained labels were logged, so each is logged
// once per worker rather than once per job.
const warnedSchemas = new Set<string>();

/**
 * Logs the labels of a job's schema that the model was not trained on and
 * no plugin covers. A run queued with such labels (by a typo, say) gets
 * poor results, and the producer does not load the model, so it cannot check.
 */
function warnUntrainedOnce(
  engine: Engine,
  run: string,
  schema: string[],
  log: Logger,
): void {
  const key = JSON.stringify([run, schema]);
  if (warnedSchemas.has(key)) return;
  warnedSchemas.add(key);
  const labels = engine.untrained(schema);
  if (labels.length === 0) return;
  log.warn(
    { run, labels, trained: engine.manifest.labels },
    'run has labels the model was not trained on and no plugin covers; expect poor results for them',
  );
}

async function processJob(
  job: Job<JobData>,
  engine: Engine,
  parts: PartWriter,
  hooks: ChunkHooks,
  metrics: WorkerMetrics,
  log: Logger,
) {
  const { run, generation, schema, chunks } = job.data;
  warnUntrainedOnce(engine, run, schema, log);
  // Results of a forgotten run would be neither counted nor exported.
  if (!(await hooks.isCurrent(job.data))) {
    log.info(
      { jobId: job.id, run, generation, chunks: chunks.length },
      'job of a forgotten run skipped',
    );
    return { chunks: 0, skipped: chunks.length };
  }
  const lastAttempt = job.attemptsMade + 1 >= (job.opts.attempts ?? 1);
  let results: Entity[][];
  try {
    results = await metrics.timeInference(() =>
      engine.pool.run(chunkTask(chunks, schema)),
    );
  } catch (err) {
    const permanent = err instanceof RangeError;
    if ((lastAttempt || permanent) && chunks.length > 1) {
      const settled = await settleAlone(job, engine, parts, hooks, log);
      if (settled) return settled;
    }
    if (lastAttempt || permanent) {
      // Written before the job is marked failed, so export finds the error
      // even if this process dies right after.
      const message =
        err instanceof Error ? `${err.name}: ${err.message}` : String(err);
      try {
        await parts.append(
          run,
          generation,
          chunks.map((c) => ({ id: c.id, k: c.k, error: message })),
        );
      } catch (writeErr) {
        // PartWriter logged it; the job still fails with err.
        if (!(writeErr instanceof PartFileError)) throw writeErr;
      }
      log.error(
        { jobId: job.id, run, err, documents: chunks.map((c) => c.id) },
        'chunks failed for good',
      );
      await hooks.failed(job.data, failuresOf(chunks, job.id, message));
    }
    if (permanent) {
      const { UnrecoverableError } = loadBullmq();
      throw new UnrecoverableError((err as Error).message);
    }
    throw err;
  }
  const records: PartRecord[] = chunks.map((c, i) => ({
    id: c.id,
    k: c.k,
    range: c.range,
    entities: results[i],
  }));
  try {
    await parts.append(run, generation, records);
  } catch (err) {
    // The job fails with the write error, so BullMQ retries it. After the
    // last attempt its chunks are recorded as failed, so that status no
    // longer shows the run waiting for them and enqueuing the file again
    // retries them.
    if (lastAttempt) {
      await hooks.failed(job.data, failuresOf(chunks, job.id, errorText(err)));
    }
    throw err;
  }
  await hooks.done(job.data, job.id);
  // Results live in part files; the return value stays small for Redis.
  return { chunks: chunks.length };
}

/**
 * Runs each chunk of a job that failed for good as a task of its own, so a
 * chunk that breaks the model or a plugin fails alone instead of taking the
 * results of the job's other chunks with it. Writes the results and the
 * errors and counts both.
 *
 * @returns the job's return value, or undefined when every chunk failed
 *   again, so the caller fails the whole job as before
 */
async function settleAlone(
  job: Job<JobData>,
  engine: Engine,
  parts: PartWriter,
  hooks: ChunkHooks,
  log: Logger,
): Promise<{ chunks: number; failed: number } | undefined> {
  const { run, generation, schema, chunks } = job.data;
  const records: PartRecord[] = [];
  const good: QueuedChunk[] = [];
  const bad: ChunkFailure[] = [];

  for (const chunk of chunks) {
    try {
      const [entities] = await engine.pool.run(chunkTask([chunk], schema));
      records.push({ id: chunk.id, k: chunk.k, range: chunk.range, entities });
      good.push(chunk);
    } catch (err) {
      const message =
        err instanceof Error ? `${err.name}: ${err.message}` : String(err);
      records.push({ id: chunk.id, k: chunk.k, error: message });
      bad.push(...failuresOf([chunk], job.id, message));
    }
  }
  if (good.length === 0) return undefined;

  try {
    await parts.append(run, generation, records);
  } catch (err) {
    // Without their lines no chunk of the job has results to export, so
    // all of them count as failed and the job fails with the write error.
    await hooks.failed(job.data, failuresOf(chunks, job.id, errorText(err)));
    throw err;
  }
  log.error(
    {
      jobId: job.id,
      run,
      failed: bad.length,
      documents: [...new Set(bad.map((c) => c.id))],
    },
    'chunks failed for good; the other chunks of the job have results',
  );
  await hooks.done({ ...job.data, chunks: good }, job.id);
  await hooks.failed(job.data, bad);
  return { chunks: good.length, failed: bad.length };
}

/** Describes each of a job's chunks as failed with one error. */
function failuresOf(
  chunks: QueuedChunk[],
  jobId: string | undefined,
  error: string,
): ChunkFailure[] {
  return chunks.map(({ id, k, range }) => ({
    id,
    k,
    range,
    error,
    job: jobId ?? '',
  }));
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

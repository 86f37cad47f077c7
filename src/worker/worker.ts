import { hostname } from 'node:os';

import type { Job, Queue, Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';

import { chunkTask } from '../chunking/plan.js';
import {
  errorLine,
  PluginStackLog,
  type TextOutcome,
} from '../engine/text-outcome.js';
import { failsEveryAttempt } from '../errors/errors.js';
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
   *
   * @param startedAt - when the job became active, in ms since the epoch
   */
  done: (
    job: JobData,
    jobId: string | undefined,
    startedAt: number | undefined,
  ) => Promise<void>;
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
    done: async ({ run, generation, chunks }, jobId, startedAt) => {
      totals.jobs++;
      totals.chunks += chunks.length;
      await runStore(run).countDone(
        chunks.length,
        generation,
        jobId,
        startedAt,
      );
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
  const pluginStacks = new PluginStackLog(workerLog);

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
            pluginStacks,
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

/**
 * Runs a job's chunks as one pool task and writes their results.
 *
 * A chunk on which a rule plugin failed gets an error line and is recorded
 * as failed. The job's other chunks keep their results, and the job is not
 * retried, because the plugin would fail the same way. A job on whose every
 * chunk a plugin failed ends as a permanent failure does (see
 * {@link failOnPlugins}).
 *
 * A failure of the task itself (a model run, a thread, the time limit)
 * fails the job, so BullMQ retries it. After the last attempt
 * {@link settleAlone} runs its chunks one by one. A failure that would
 * repeat on every attempt (a chunk too long for the model, a time limit
 * passed inside a rule plugin) skips the retries: the chunks run one by
 * one at once, and a job of one chunk fails with an UnrecoverableError.
 *
 * @returns the job's return value: counts of the chunks with results and,
 *   when some failed, of the failed ones
 * @throws the task's error, or an UnrecoverableError for a failure that
 *   would repeat on every attempt
 */
async function processJob(
  job: Job<JobData>,
  engine: Engine,
  parts: PartWriter,
  hooks: ChunkHooks,
  metrics: WorkerMetrics,
  log: Logger,
  pluginStacks: PluginStackLog,
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
  let outcomes: TextOutcome[];
  try {
    outcomes = await metrics.timeInference(() =>
      engine.pool.run(chunkTask(chunks, schema)),
    );
  } catch (err) {
    const permanent = failsEveryAttempt(err);
    if ((lastAttempt || permanent) && chunks.length > 1) {
      // The chunks that now run alone get the job's attempts that are left.
      const tries = (job.opts.attempts ?? 1) - job.attemptsMade;
      const settled = await settleAlone(job, engine, parts, hooks, log, tries);
      if (settled) return settled;
    }
    if (lastAttempt || permanent) {
      const failures = failuresOf(chunks, job.id, errorLine(err));
      await recordFailed(job, failures, parts);
      log.error(
        { jobId: job.id, run, err, documents: chunks.map((c) => c.id) },
        'chunks failed for good',
      );
      await hooks.failed(job.data, failures);
    }
    if (permanent) {
      const { UnrecoverableError } = loadBullmq();
      throw new UnrecoverableError((err as Error).message);
    }
    throw err;
  }

  pluginStacks.note(outcomes);
  const failures = chunkFailures(chunks, outcomes, job.id);
  if (failures.length === chunks.length) {
    return failOnPlugins(job, failures, parts, hooks, log);
  }
  return writeOutcomes(job, outcomes, parts, hooks, log, lastAttempt);
}

/**
 * Ends a job on whose every chunk a rule plugin failed as a permanent
 * failure: writes the error lines, records the chunks as failed, and fails
 * the job with an UnrecoverableError, so that BullMQ does not retry it.
 *
 * @throws UnrecoverableError with the plugin's error, always
 */
async function failOnPlugins(
  job: Job<JobData>,
  failures: ChunkFailure[],
  parts: PartWriter,
  hooks: ChunkHooks,
  log: Logger,
): Promise<never> {
  await recordFailed(job, failures, parts);
  log.error(
    {
      jobId: job.id,
      run: job.data.run,
      error: failures[0].error,
      documents: failures.map((c) => c.id),
    },
    'chunks failed for good',
  );
  await hooks.failed(job.data, failures);
  const { UnrecoverableError } = loadBullmq();
  throw new UnrecoverableError(
    failures.length === 1
      ? failures[0].error
      : `a rule plugin failed on all ${failures.length} chunks of the job; ` +
          `the first error: ${failures[0].error}`,
  );
}

/**
 * Runs each chunk of a job that failed for good as a task of its own, so a
 * chunk that breaks the model fails alone instead of taking the results of
 * the job's other chunks with it. Writes the results and the errors and
 * counts both. Only a failure of the whole task leads here: a rule
 * plugin's failure on a chunk is that chunk's outcome, here as in the job's
 * task.
 *
 * @param tries - runs of each chunk at most
 * @returns the job's return value, or undefined when every chunk failed
 *   again, so the caller fails the whole job as before
 */
async function settleAlone(
  job: Job<JobData>,
  engine: Engine,
  parts: PartWriter,
  hooks: ChunkHooks,
  log: Logger,
  tries: number,
): Promise<{ chunks: number; failed?: number } | undefined> {
  const { chunks } = job.data;
  const outcomes: TextOutcome[] = [];
  for (const chunk of chunks) {
    outcomes.push(await runAlone(job, chunk, engine, log, tries));
  }
  if (outcomes.every((o) => !Array.isArray(o))) return undefined;
  // Without their lines no chunk has results to export, so a write error
  // counts every chunk as failed at once.
  return writeOutcomes(job, outcomes, parts, hooks, log, true);
}

/**
 * Runs one chunk of a job as a task of its own, up to `tries` times. A
 * failure that would repeat on every attempt ({@link failsEveryAttempt})
 * ends its runs at once.
 *
 * @returns the chunk's outcome, its error after the last run when every
 *   run failed
 */
async function runAlone(
  job: Job<JobData>,
  chunk: QueuedChunk,
  engine: Engine,
  log: Logger,
  tries: number,
): Promise<TextOutcome> {
  for (let attempt = 1; ; attempt++) {
    try {
      const [outcome] = await engine.pool.run(
        chunkTask([chunk], job.data.schema),
      );
      return outcome;
    } catch (err) {
      if (attempt >= tries || failsEveryAttempt(err)) {
        return { error: errorLine(err) };
      }
      log.warn(
        { jobId: job.id, id: chunk.id, k: chunk.k, err, attempt, tries },
        'chunk of a failed job failed when run alone; retrying',
      );
    }
  }
}

/**
 * Writes the outcome of each chunk of a job to its part file, as entities
 * or as an error line, and counts the chunks with results as done and the
 * others as failed.
 *
 * @param finalWrite - whether a failed write records every chunk of the job
 *   as failed, as it must on the job's last attempt
 * @returns the job's return value
 * @throws the part file's write error, so that BullMQ retries the job
 */
async function writeOutcomes(
  job: Job<JobData>,
  outcomes: TextOutcome[],
  parts: PartWriter,
  hooks: ChunkHooks,
  log: Logger,
  finalWrite: boolean,
): Promise<{ chunks: number; failed?: number }> {
  const { run, generation, chunks } = job.data;
  const records: PartRecord[] = chunks.map((c, i) => {
    const outcome = outcomes[i];
    return Array.isArray(outcome)
      ? { id: c.id, k: c.k, range: c.range, entities: outcome }
      : { id: c.id, k: c.k, error: outcome.error };
  });
  try {
    await parts.append(run, generation, records);
  } catch (err) {
    // The job fails with the write error, so BullMQ retries it unless
    // this was its last attempt. A final write records its chunks as
    // failed, so that status no longer shows the run waiting for them and
    // enqueuing the file again retries them.
    if (finalWrite) {
      await hooks.failed(job.data, failuresOf(chunks, job.id, errorText(err)));
    }
    throw err;
  }

  const bad = chunkFailures(chunks, outcomes, job.id);
  const good = chunks.filter((_, i) => Array.isArray(outcomes[i]));
  if (bad.length === 0) {
    await hooks.done(job.data, job.id, job.processedOn);
    // Results live in part files; the return value stays small for Redis.
    return { chunks: chunks.length };
  }
  log.error(
    {
      jobId: job.id,
      run,
      failed: bad.length,
      error: bad[0].error,
      documents: [...new Set(bad.map((c) => c.id))],
    },
    'chunks failed for good; the other chunks of the job have results',
  );
  await hooks.done({ ...job.data, chunks: good }, job.id, job.processedOn);
  await hooks.failed(job.data, bad);
  return { chunks: good.length, failed: bad.length };
}

/**
 * Writes the error lines of chunks that failed for good. They are written
 * before the job is marked failed, so export finds the errors even if this
 * process dies right after.
 */
async function recordFailed(
  job: Job<JobData>,
  failures: ChunkFailure[],
  parts: PartWriter,
): Promise<void> {
  const { run, generation } = job.data;
  const records = failures.map(({ id, k, error }) => ({ id, k, error }));
  try {
    await parts.append(run, generation, records);
  } catch (writeErr) {
    // PartWriter logged it. Redis keeps each chunk's error, so export
    // still writes its document's line with that error.
    if (!(writeErr instanceof PartFileError)) throw writeErr;
  }
}

/** Describes the chunks whose outcome is a failure, each with its error. */
function chunkFailures(
  chunks: QueuedChunk[],
  outcomes: TextOutcome[],
  jobId: string | undefined,
): ChunkFailure[] {
  return chunks.flatMap((chunk, i) => {
    const outcome = outcomes[i];
    return Array.isArray(outcome)
      ? []
      : failuresOf([chunk], jobId, outcome.error);
  });
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

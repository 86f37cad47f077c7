import { createHash } from 'node:crypto';
import { appendFile, mkdir, rename } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join, resolve } from 'node:path';

import type { JobsOptions, Queue } from 'bullmq';
import type { Logger } from 'pino';

import { planChunks } from '../chunking/plan.js';
import type { Settings } from '../config/config.js';
import type { RedisLock } from '../queue/redis-lock.js';
import type {
  DocumentRecord,
  JobData,
  QueuedChunk,
  RunStore,
} from '../queue/run-store.js';
import { retryOnReconnect } from '../queue/reconnect.js';
import {
  inputName,
  readCsvDocuments,
  STDIN,
  type CsvSourceOptions,
  type RejectedRow,
  type SourceDocument,
  type SourceEvent,
} from './csv-source.js';

/** Counts reported by one enqueue. */
export interface EnqueueSummary {
  documents: number;
  chunks: number;
  jobs: number;
  /** Documents already in the run from an earlier enqueue of the same file. */
  alreadyQueued: number;
  rejected: number;
  /**
   * Rejected rows not recorded again because an earlier enqueue into the
   * run recorded a reject at the same file and line.
   */
  alreadyRejected: number;
}

// Documents looked up and queued per Redis round trip.
const BATCH_DOCUMENTS = 500;

// Name and time-to-live in milliseconds of the lock a producer holds on its
// run. The holder renews it every third of that time, so the time-to-live
// only matters when a producer dies, which blocks its run for at most a
// minute.
const PRODUCER_LOCK = 'enqueue';
const PRODUCER_LOCK_MS = 60_000;

/** A document to queue, with the file recorded for it in the run. */
export interface QueueDocument extends SourceDocument {
  /** Input file as {@link recordedFile} gives it, recorded in the run. */
  file: string;
  /** Path of the input file as the user gave it, for rejects and logs. */
  source: string;
}

/** A document to queue or a row rejected by its reader. */
export type QueueEvent<D extends QueueDocument = QueueDocument> =
  { type: 'document'; document: D } | { type: 'reject'; reject: RejectedRow };

/** The producer lock of an enqueue and the callbacks it runs. */
export interface EnqueueOptions<D extends QueueDocument> {
  /**
   * The run's producer lock from {@link lockRun}, held by the caller for the
   * whole enqueue. The enqueue stops when the lock is lost.
   */
  lock: RedisLock;
  /**
   * Records a rejected row. When absent, a row whose file and line were not
   * rejected in the run before is logged, appended to
   * `<outputDir>/<run>/rejects.jsonl` and counted in the run's stats.
   */
  onReject?: (row: RejectedRow) => Promise<void>;
  /** Runs after the jobs and run records of a batch of documents are written. */
  onQueued?: (documents: D[]) => Promise<void>;
}

/**
 * Streams a CSV into the queue while holding the run's producer lock.
 * Documents already recorded for the run from the same file and line are
 * skipped, so enqueuing a file twice adds nothing. A second row with an id
 * already in the run is rejected as a duplicate, and a row rejected at the
 * same file and line before is not recorded again.
 *
 * @throws RangeError when another producer is enqueuing into the run, or
 *   when the run was queued with another schema
 */
export async function enqueueFile(
  queue: Queue,
  store: RunStore,
  file: string,
  source: CsvSourceOptions,
  settings: Settings,
  chunkLength: number,
  log: Logger,
): Promise<EnqueueSummary> {
  const lock = await lockRun(store);
  try {
    await mkdir(join(settings.outputDir, store.run), { recursive: true });
    if (!(await store.exists())) {
      await moveOldRejects(settings.outputDir, store.run, log);
    }
    return await enqueueDocuments(
      queue,
      store,
      withFile(readCsvDocuments(file, source), file),
      settings,
      chunkLength,
      log,
      { lock },
    );
  } finally {
    await lock.release().catch((err: unknown) => {
      log.warn(
        { err, run: store.run },
        'cannot release the producer lock; it expires within a minute',
      );
    });
  }
}

/**
 * Takes the run's producer lock. One producer at a time may queue into a
 * run, because the duplicate check reads the run's documents before their
 * jobs and records are written. `forget` takes the lock too.
 *
 * @throws RangeError naming the run and the lock owner when another
 *   process has the lock
 */
export async function lockRun(store: RunStore): Promise<RedisLock> {
  const lock = await tryLockRun(store);
  if (lock) return lock;
  const holder = await store.lockHolder(PRODUCER_LOCK);
  throw new RangeError(
    `run ${store.run} is being enqueued by another producer` +
      (holder ? ` (${holder})` : '') +
      '; wait for it to finish and run this command again. If that producer ' +
      `was killed, its lock expires ${PRODUCER_LOCK_MS / 1000} s after it last renewed it`,
  );
}

/**
 * Takes the run's producer lock like {@link lockRun}, or returns undefined
 * when another process has it.
 */
export function tryLockRun(store: RunStore): Promise<RedisLock | undefined> {
  const holder = `pid ${process.pid} on host ${hostname()}`;
  return store.lock(PRODUCER_LOCK, PRODUCER_LOCK_MS, holder);
}

/**
 * Renames `<outputDir>/<run>/rejects.jsonl` to
 * `rejects.<time>.jsonl` when the run has no records, because the file then
 * contains the rejects of a forgotten or expired run of the same name.
 */
async function moveOldRejects(
  outputDir: string,
  run: string,
  log: Logger,
): Promise<void> {
  const path = join(outputDir, run, 'rejects.jsonl');
  const stamp = new Date().toISOString().replace(/[-:]/g, '');
  const moved = join(outputDir, run, `rejects.${stamp}.jsonl`);
  try {
    await rename(path, moved);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  log.info({ run, moved }, 'moved the rejects file of an earlier run aside');
}

async function* withFile(
  events: AsyncIterable<SourceEvent>,
  source: string,
): AsyncGenerator<QueueEvent> {
  const file = recordedFile(source);
  for await (const event of events) {
    yield event.type === 'document'
      ? { type: 'document', document: { ...event.document, file, source } }
      : event;
  }
}

/**
 * Returns the name under which the run records an input file: its absolute
 * path, so that the same file given from another folder is recognised, or
 * `-` for standard input, which has no path.
 */
export function recordedFile(source: string): string {
  return source === STDIN ? STDIN : resolve(source);
}

/**
 * Splits documents from any source into chunks and adds them to the queue,
 * BATCH_DOCUMENTS documents per Redis round trip. A document already
 * recorded for the run from the same file and line is skipped. Another
 * document with an id already in the run is rejected as a duplicate. The
 * caller holds the run's producer lock throughout. The first documents
 * queued store `settings.schema` as the run's schema.
 *
 * @throws RangeError before reading any event when the run was queued with
 *   another schema; Error when the producer lock is lost, before the next
 *   batch
 */
export async function enqueueDocuments<D extends QueueDocument>(
  queue: Queue,
  store: RunStore,
  events: AsyncIterable<QueueEvent<D>>,
  settings: Settings,
  chunkLength: number,
  log: Logger,
  options: EnqueueOptions<D>,
): Promise<EnqueueSummary> {
  const summary: EnqueueSummary = {
    documents: 0,
    chunks: 0,
    jobs: 0,
    alreadyQueued: 0,
    rejected: 0,
    alreadyRejected: 0,
  };
  const { lock, onReject, onQueued } = options;
  const recordReject = onReject
    ? async (row: RejectedRow) => {
        await onReject(row);
        return true;
      }
    : runRejectWriter(store, settings.outputDir, log);
  let opened: Promise<number | undefined> | undefined;
  let batch: D[] = [];

  // Checked before any row is read, so that an enqueue with another schema
  // neither queues nor rejects anything.
  checkSchema(store.run, await store.schema(), settings.schema);

  const reject = async (row: RejectedRow) => {
    if (await recordReject(row)) summary.rejected++;
    else summary.alreadyRejected++;
  };

  const flush = async () => {
    checkLock(lock, store.run);
    const docs = batch;
    batch = [];
    const existing = await store.lookup(docs.map((d) => d.id));
    const fresh: D[] = [];
    const seen = new Map<string, QueueDocument>();
    for (let i = 0; i < docs.length; i++) {
      const doc = docs[i];
      const prior = existing[i];
      const earlier = seen.get(doc.id);
      if (prior && prior.file === doc.file && prior.line === doc.line) {
        summary.alreadyQueued++;
      } else if (prior || earlier) {
        await reject({
          file: doc.source,
          line: doc.line,
          id: doc.id,
          reason: `duplicate id; first seen at ${firstSeenAt(doc, prior, earlier)}`,
        });
      } else {
        seen.set(doc.id, doc);
        fresh.push(doc);
      }
    }
    if (fresh.length === 0) return;
    opened ??= openRun(store, settings.schema);
    await queueDocuments(
      queue,
      store,
      await opened,
      fresh,
      settings,
      chunkLength,
      summary,
    );
    await onQueued?.(fresh);
  };

  for await (const event of events) {
    if (event.type === 'reject') {
      await reject(event.reject);
      continue;
    }
    batch.push(event.document);
    if (batch.length >= BATCH_DOCUMENTS) await flush();
  }
  await flush();
  return summary;
}

/**
 * Opens the run's generation and stores its schema, before the first jobs
 * of an enqueue are queued.
 *
 * @returns the run's generation; see {@link RunStore.openGeneration}
 * @throws RangeError when the run has another schema stored
 */
async function openRun(
  store: RunStore,
  schema: string[],
): Promise<number | undefined> {
  const generation = await store.openGeneration();
  // A run recorded before runs stored their schema gets the schema of this
  // enqueue. The schema of its earlier jobs is unknown, so this enqueue
  // cannot be checked, but every later one is checked against it. Storing
  // nothing would leave such a run unchecked for good.
  const stored = await store.storeSchema(schema);
  // Checked again, because a producer that took over the run after this
  // one's lock expired may have stored another schema since the first check.
  checkSchema(store.run, stored, schema);
  return generation;
}

/**
 * Rejects an enqueue whose schema has other labels than the one the run's
 * jobs were queued with, because an export would then mix documents
 * extracted with both. The order of the labels does not matter, since each
 * document's entities are sorted by position.
 *
 * @param stored - the run's schema, or undefined for a run without one
 * @throws RangeError naming the run, both schemas and what to do instead
 */
function checkSchema(
  run: string,
  stored: string[] | undefined,
  requested: string[],
): void {
  if (stored === undefined || sameLabels(stored, requested)) return;
  const queuedWith = stored.join(',');
  throw new RangeError(
    `run ${run} was queued with schema ${queuedWith}, not ${requested.join(',')}. ` +
      `To add documents to it, pass --schema ${queuedWith}; otherwise pass ` +
      `a new --run name, or delete the run first with uie-batch forget --run ${run}`,
  );
}

function sameLabels(a: string[], b: string[]): boolean {
  const set = new Set(a);
  return set.size === new Set(b).size && b.every((label) => set.has(label));
}

/**
 * Stops an enqueue whose producer lock was lost, since another producer may
 * then be queuing into the run. Documents queued so far stay queued.
 */
function checkLock(lock: RedisLock, run: string): void {
  if (!lock.isLost) return;
  throw new Error(
    `run ${run}: the producer lock expired during the enqueue, so another producer may be queuing into the run; run this command again to queue the remaining documents`,
  );
}

/** Describes where the first document with a duplicate's id was read. */
function firstSeenAt(
  doc: QueueDocument,
  prior: DocumentRecord | undefined,
  earlier: QueueDocument | undefined,
): string {
  if (prior) return `${inputName(prior.file)} line ${prior.line}`;
  if (earlier && earlier.file !== doc.file) {
    return `${inputName(earlier.source)} line ${earlier.line}`;
  }
  return `line ${earlier?.line}`;
}

/**
 * Returns the default reject handler. A row whose file and line were not
 * rejected in the run before is logged, appended to
 * `<outputDir>/<run>/rejects.jsonl` and counted in the run's stats, and the
 * handler returns true. For a row rejected before it returns false.
 */
function runRejectWriter(
  store: RunStore,
  outputDir: string,
  log: Logger,
): (row: RejectedRow) => Promise<boolean> {
  const rejectsPath = join(outputDir, store.run, 'rejects.jsonl');
  let ready: Promise<unknown> | undefined;
  return async (row) => {
    const file = recordedFile(row.file);
    if (await store.hasReject(file, row.line)) return false;
    log.warn(
      { file: row.file, line: row.line, id: row.id, reason: row.reason },
      'row rejected',
    );
    ready ??= mkdir(join(outputDir, store.run), { recursive: true });
    await ready;
    // Appended before it is recorded: a producer killed in between writes
    // the row again on the next enqueue rather than losing it.
    await appendFile(rejectsPath, JSON.stringify(row) + '\n');
    await store.addReject(file, row.line);
    return true;
  };
}

async function queueDocuments(
  queue: Queue,
  store: RunStore,
  generation: number | undefined,
  docs: QueueDocument[],
  settings: Settings,
  chunkLength: number,
  summary: EnqueueSummary,
): Promise<void> {
  if (docs.length === 0) return;
  const firstSeq = await store.reserveSeq(docs.length);
  const records: DocumentRecord[] = [];
  const jobs: { name: string; data: JobData; opts: JobsOptions }[] = [];
  let pending: QueuedChunk[] = [];

  const addJob = () => {
    if (pending.length === 0) return;
    const data: JobData = {
      run: store.run,
      ...(generation === undefined ? {} : { generation }),
      schema: settings.schema,
      chunks: pending,
    };
    const id = jobId(store.run, generation, pending);
    jobs.push({
      name: 'extract',
      data,
      opts: { ...jobOptions(settings), jobId: id },
    });
    pending = [];
  };

  docs.forEach((doc, i) => {
    const chunks = planChunks(doc.text, chunkLength, settings.chunkOverlap);
    records.push({
      id: doc.id,
      file: doc.file,
      line: doc.line,
      seq: firstSeq + i,
      chunks: chunks.length,
    });
    chunks.forEach((c, k) => {
      pending.push({ id: doc.id, k, range: c.range, text: c.text });
      if (pending.length >= settings.chunksPerJob) addJob();
    });
    summary.documents++;
    summary.chunks += chunks.length;
  });
  addJob();

  // Jobs first: a crash before the records are written leaves documents that
  // a repeated enqueue queues again under the same job ids.
  await retryOnReconnect(() => queue.addBulk(jobs));
  await retryOnReconnect(() =>
    store.record(records, settings.runRetentionDays),
  );
  summary.jobs += jobs.length;
}

/**
 * Builds a job id from the run, its generation and the chunks the job
 * carries: `<run>.<generation>-<hash>`, or `<run>.<hash>` for a run without
 * a generation. BullMQ ignores a job whose id it still keeps, finished ones
 * included, so the generation keeps the jobs of a run queued again after
 * `forget` from being dropped as those of the forgotten run. Document ids
 * may hold any character, so they are hashed rather than embedded.
 */
function jobId(
  run: string,
  generation: number | undefined,
  chunks: QueuedChunk[],
): string {
  const hash = createHash('sha256');
  for (const c of chunks) hash.update(`${c.id}\u0000${c.k}\u0000`);
  const digest = hash.digest('hex').slice(0, 32);
  return generation === undefined
    ? `${run}.${digest}`
    : `${run}.${generation}-${digest}`;
}

// Generations have at most 15 decimal digits; see RunStore.openGeneration.
const JOB_SUFFIX = /^(\d{1,15}-)?[0-9a-f]{32}$/;

/**
 * Returns whether a job id was built by {@link jobId} for this run, in any
 * generation. Run names may contain ".", but the generation and hash after
 * the run name never do, so no other run's job ids match.
 */
export function isJobOfRun(id: string, run: string): boolean {
  return id.startsWith(`${run}.`) && JOB_SUFFIX.test(id.slice(run.length + 1));
}

function jobOptions(settings: Settings): JobsOptions {
  return {
    attempts: settings.attempts,
    backoff: { type: 'exponential', delay: 1000 },
    // Results live in part files, so finished jobs are only kept briefly for
    // inspection; this bounds Redis memory on long runs.
    removeOnComplete: { age: 3600, count: 1000 },
    removeOnFail: { age: 7 * 24 * 3600 },
  };
}

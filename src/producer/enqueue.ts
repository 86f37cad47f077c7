import { createHash } from 'node:crypto';
import { appendFile, mkdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';

import type { JobsOptions, Queue } from 'bullmq';
import type { Logger } from 'pino';

import { planChunks } from '../chunking/plan.js';
import type { Settings } from '../config/config.js';
import type {
  DocumentRecord,
  JobData,
  QueuedChunk,
  RunStore,
} from '../queue/run-store.js';
import { retryOnReconnect } from '../queue/reconnect.js';
import {
  readCsvDocuments,
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
}

// Documents looked up and queued per Redis round trip.
const BATCH_DOCUMENTS = 500;

/** A document to queue, with the file recorded for it in the run. */
export interface QueueDocument extends SourceDocument {
  /** Absolute path of the input file, recorded in the run. */
  file: string;
  /** Path of the input file as the user gave it, for rejects and logs. */
  source: string;
}

/** A document to queue or a row rejected by its reader. */
export type QueueEvent<D extends QueueDocument = QueueDocument> =
  { type: 'document'; document: D } | { type: 'reject'; reject: RejectedRow };

/** Callbacks through which a producer follows an enqueue. */
export interface EnqueueHooks<D extends QueueDocument> {
  /**
   * Records a rejected row. When absent, the row is logged, appended to
   * `<outputDir>/<run>/rejects.jsonl` and counted in the run's stats.
   */
  onReject?: (row: RejectedRow) => Promise<void>;
  /** Runs after the jobs and run records of a batch of documents are written. */
  onQueued?: (documents: D[]) => Promise<void>;
}

/**
 * Streams a CSV into the queue. Documents already recorded for the run from
 * the same file and line are skipped, so enqueuing a file twice adds nothing;
 * a second row with an id already in the run is rejected as a duplicate.
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
  await mkdir(join(settings.outputDir, store.run), { recursive: true });
  return enqueueDocuments(
    queue,
    store,
    withFile(readCsvDocuments(file, source), file),
    settings,
    chunkLength,
    log,
  );
}

async function* withFile(
  events: AsyncIterable<SourceEvent>,
  source: string,
): AsyncGenerator<QueueEvent> {
  const file = resolve(source);
  for await (const event of events) {
    yield event.type === 'document'
      ? { type: 'document', document: { ...event.document, file, source } }
      : event;
  }
}

/**
 * Splits documents from any source into chunks and adds them to the queue,
 * BATCH_DOCUMENTS documents per Redis round trip. A document already
 * recorded for the run from the same file and line is skipped. Another
 * document with an id already in the run is rejected as a duplicate.
 */
export async function enqueueDocuments<D extends QueueDocument>(
  queue: Queue,
  store: RunStore,
  events: AsyncIterable<QueueEvent<D>>,
  settings: Settings,
  chunkLength: number,
  log: Logger,
  hooks: EnqueueHooks<D> = {},
): Promise<EnqueueSummary> {
  const summary: EnqueueSummary = {
    documents: 0,
    chunks: 0,
    jobs: 0,
    alreadyQueued: 0,
    rejected: 0,
  };
  const recordReject =
    hooks.onReject ?? runRejectWriter(store, settings.outputDir, log);
  let batch: D[] = [];

  const reject = async (row: RejectedRow) => {
    summary.rejected++;
    await recordReject(row);
  };

  const flush = async () => {
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
    await queueDocuments(queue, store, fresh, settings, chunkLength, summary);
    if (fresh.length > 0) await hooks.onQueued?.(fresh);
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

/** Describes where the first document with a duplicate's id was read. */
function firstSeenAt(
  doc: QueueDocument,
  prior: DocumentRecord | undefined,
  earlier: QueueDocument | undefined,
): string {
  if (prior) return `${prior.file} line ${prior.line}`;
  if (earlier && earlier.file !== doc.file) {
    return `${earlier.source} line ${earlier.line}`;
  }
  return `line ${earlier?.line}`;
}

/**
 * Returns the default reject handler: it logs the row, appends it to
 * `<outputDir>/<run>/rejects.jsonl` and counts it in the run's stats.
 */
function runRejectWriter(
  store: RunStore,
  outputDir: string,
  log: Logger,
): (row: RejectedRow) => Promise<void> {
  const rejectsPath = join(outputDir, store.run, 'rejects.jsonl');
  let ready: Promise<unknown> | undefined;
  return async (row) => {
    log.warn(
      { file: row.file, line: row.line, id: row.id, reason: row.reason },
      'row rejected',
    );
    ready ??= mkdir(join(outputDir, store.run), { recursive: true });
    await ready;
    await appendFile(rejectsPath, JSON.stringify(row) + '\n');
    await store.count('rejected', 1);
  };
}

async function queueDocuments(
  queue: Queue,
  store: RunStore,
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
    jobs.push({
      name: 'extract',
      data: { run: store.run, schema: settings.schema, chunks: pending },
      opts: { ...jobOptions(settings), jobId: jobId(store.run, pending) },
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
 * Builds a job id from the run and the chunks it carries. Document ids may
 * hold any character, so they are hashed rather than embedded.
 */
function jobId(run: string, chunks: QueuedChunk[]): string {
  const hash = createHash('sha256');
  for (const c of chunks) hash.update(`${c.id}\u0000${c.k}\u0000`);
  return `${run}.${hash.digest('hex').slice(0, 32)}`;
}

const JOB_HASH = /^[0-9a-f]{32}$/;

/**
 * Returns whether a job id was built by {@link jobId} for this run. Run
 * names may contain ".", so the part after the run name must be the hash.
 */
export function isJobOfRun(id: string, run: string): boolean {
  return id.startsWith(`${run}.`) && JOB_HASH.test(id.slice(run.length + 1));
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

import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';

import type { Queue } from 'bullmq';
import type { Logger } from 'pino';

import type { Settings } from '../config/config.js';
import { IdSet } from '../pipeline/id-set.js';
import type { RedisLock } from '../queue/redis-lock.js';
import {
  textDigest,
  type DocumentRecord,
  type RunStore,
} from '../queue/run-store.js';
import {
  readCsvDocuments,
  type CsvSourceOptions,
  type RejectedRow,
  type SourceDocument,
  type SourceEvent,
} from './csv-source.js';
import { queueDocuments, requeueFailures } from './extract-jobs.js';
import { inputName, recordedFile } from './open-input.js';
import { checkLock, lockRun, unlockRun } from './run-lock.js';
import { moveOldRejects, runRejectWriter } from './run-rejects.js';
import { checkSchema, openRun } from './run-schema.js';

export { isJobOfRun } from './extract-jobs.js';

/** Counts reported by one enqueue. */
export interface EnqueueSummary {
  documents: number;
  chunks: number;
  jobs: number;
  /** Documents already in the run from an earlier enqueue of the same file. */
  alreadyQueued: number;
  /**
   * Documents among those already queued whose chunks had failed for good
   * and were queued again.
   */
  retried: number;
  rejected: number;
  /**
   * Rejected rows not recorded again because an earlier enqueue into the
   * run recorded the same rejected row ({@link runRejectWriter}).
   */
  alreadyRejected: number;
}

// Documents looked up and queued per Redis round trip.
const BATCH_DOCUMENTS = 500;

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
   * Records a rejected row. When absent, a row not rejected in the run
   * before is logged, appended to `<outputDir>/<run>/rejects.jsonl` and
   * counted in the run's stats ({@link runRejectWriter}).
   */
  onReject?: (row: RejectedRow) => Promise<void>;
  /** Runs after the jobs and run records of a batch of documents are written. */
  onQueued?: (documents: D[]) => Promise<void>;
}

/**
 * Streams a CSV into the queue while holding the run's producer lock.
 * Documents already recorded for the run from the same file and line are
 * skipped, so enqueuing a file twice adds nothing, except that their chunks
 * that failed for good are queued again. A second row with an id already in
 * the run is rejected as a duplicate, and a row rejected before is not
 * recorded again.
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
    const summary = await enqueueDocuments(
      queue,
      store,
      withFile(readCsvDocuments(file, { ...source, log }), file),
      settings,
      chunkLength,
      log,
      { lock },
    );
    const rows =
      summary.documents +
      summary.alreadyQueued +
      summary.rejected +
      summary.alreadyRejected;
    // A file with a header and no rows still makes the run, so that its
    // export writes an empty file, as extract does for such a file.
    if (rows === 0) await openRun(store, settings.schema);
    return summary;
  } finally {
    await unlockRun(lock).catch((err: unknown) => {
      log.warn(
        { err, run: store.run },
        'cannot release the producer lock; it expires within a minute',
      );
    });
  }
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
 * Splits documents from any source into chunks and adds them to the queue,
 * BATCH_DOCUMENTS documents per Redis round trip. A document already
 * recorded for the run from the same file and line is skipped, apart from
 * its chunks that failed for good, which are queued again. Another document
 * with an id already in the run is rejected as a duplicate. The caller
 * holds the run's producer lock throughout. The first documents queued
 * store `settings.schema` as the run's schema.
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
    retried: 0,
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
  // Ids of every document read by this enqueue, so that a repeated id is
  // rejected however far apart the two rows are.
  const readIds = new IdSet();

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
    const { fresh, queuedBefore, duplicates } = sortBatch(
      store.run,
      docs,
      existing,
      readIds,
    );
    summary.alreadyQueued += queuedBefore.length;
    for (const row of duplicates) await reject(row);
    const failures = await store.failedChunks(
      queuedBefore.map(({ record }) => record),
    );
    if (fresh.length === 0 && failures.length === 0) return;
    opened ??= openRun(store, settings.schema);
    const generation = await opened;
    if (fresh.length > 0) {
      await queueDocuments(
        queue,
        store,
        generation,
        fresh,
        settings,
        chunkLength,
        summary,
      );
      await onQueued?.(fresh);
    }
    if (failures.length > 0) {
      const texts = new Map(queuedBefore.map(({ doc }) => [doc.id, doc.text]));
      await requeueFailures(
        queue,
        store,
        generation,
        failures,
        texts,
        settings,
        summary,
      );
    }
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

/** A batch of documents sorted by what the run holds for their ids. */
interface SortedBatch<D extends QueueDocument> {
  /** Documents whose ids the run does not hold yet. */
  fresh: D[];
  /** Documents recorded for the run from the same file and line before. */
  queuedBefore: { doc: D; record: DocumentRecord }[];
  /** Rows whose id the run holds for another row, in input order. */
  duplicates: RejectedRow[];
}

/**
 * Sorts a batch by the run's records of its ids. Of two rows with one id in
 * the batch, the first is kept. A row queued before whose text has changed
 * since is rejected.
 *
 * @param existing - the run's record of each document's id, in batch order
 */
function sortBatch<D extends QueueDocument>(
  run: string,
  docs: D[],
  existing: (DocumentRecord | undefined)[],
  readIds: IdSet,
): SortedBatch<D> {
  const sorted: SortedBatch<D> = {
    fresh: [],
    queuedBefore: [],
    duplicates: [],
  };
  const seen = new Map<string, QueueDocument>();
  for (let i = 0; i < docs.length; i++) {
    const doc = docs[i];
    const prior = existing[i];
    const earlier = seen.get(doc.id);
    // Whether an earlier row of this enqueue, in this batch or an earlier
    // one, had the id: such a row is a duplicate whatever the run holds.
    const repeat = !readIds.add(doc.id, doc.line);
    const digest = textDigest(doc.text);
    const sameFile = prior !== undefined && prior.file === doc.file && !repeat;
    // A row that moved, as when rows were inserted above it, keeps its id
    // and text, so it counts as the row queued before.
    const moved = sameFile && prior.digest === digest;
    const sameRow = sameFile && (prior.line === doc.line || moved);
    const edited = sameFile && prior.digest && prior.digest !== digest;
    if (sameRow && edited) {
      // Its results, and any failed chunks queued again, would belong to
      // the old text.
      sorted.duplicates.push({
        file: doc.source,
        line: doc.line,
        id: doc.id,
        reason: `text differs from the text queued from this row before; to extract the new text, forget run ${run} (uie-batch forget --run ${run}) or enqueue into another run`,
      });
    } else if (edited) {
      sorted.duplicates.push({
        file: doc.source,
        line: doc.line,
        id: doc.id,
        reason: `duplicate id; first seen at ${firstSeenAt(doc, prior, earlier, readIds)}, with another text. If this row is that row, edited and moved, forget run ${run} (uie-batch forget --run ${run}) or enqueue into another run to extract the new text`,
      });
    } else if (sameRow) {
      // A second row with this id and text later in the batch is then a
      // duplicate, not the same row moved again.
      seen.set(doc.id, doc);
      sorted.queuedBefore.push({ doc, record: prior });
    } else if (prior || repeat) {
      sorted.duplicates.push({
        file: doc.source,
        line: doc.line,
        id: doc.id,
        reason: `duplicate id; first seen at ${firstSeenAt(doc, prior, earlier, readIds)}`,
      });
    } else {
      seen.set(doc.id, doc);
      sorted.fresh.push(doc);
    }
  }
  return sorted;
}

/** Describes where the first document with a duplicate's id was read. */
function firstSeenAt(
  doc: QueueDocument,
  prior: DocumentRecord | undefined,
  earlier: QueueDocument | undefined,
  readIds: IdSet,
): string {
  if (earlier) {
    return earlier.file === doc.file
      ? `line ${earlier.line}`
      : `${inputName(earlier.source)} line ${earlier.line}`;
  }
  if (prior) return `${inputName(prior.file)} line ${prior.line}`;
  const line = readIds.firstLine(doc.id);
  return line === undefined ? 'an earlier row' : `line ${line}`;
}

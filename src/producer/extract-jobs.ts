import { createHash } from 'node:crypto';

import type { JobsOptions, Queue } from 'bullmq';

import { chunkContext, planChunks } from '../chunking/plan.js';
import type { Settings } from '../config/config.js';
import type {
  DocumentRecord,
  JobData,
  QueuedChunk,
  RunStore,
  StoredFailure,
} from '../queue/run-store.js';
import { textDigest } from '../queue/run-store.js';
import { retryOnReconnect } from '../queue/reconnect.js';
import { sliceCodePoints } from '../tokenizer/tokenizer.js';
import type { EnqueueSummary, QueueDocument } from './enqueue.js';

/**
 * Splits new documents into chunks, adds jobs of up to `chunksPerJob`
 * chunks to the queue and records the documents in the run, at consecutive
 * output positions.
 */
export async function queueDocuments(
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
  const jobs: QueueJob[] = [];
  let pending: QueuedChunk[] = [];

  const addJob = () => {
    if (pending.length === 0) return;
    jobs.push(extractJob(store.run, generation, pending, settings));
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
      digest: textDigest(doc.text),
    });
    chunks.forEach((c, k) => {
      pending.push({ id: doc.id, k, ...c });
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
 * Queues again the chunks of already queued documents that failed for
 * good, sliced from the documents' texts at the ranges they were queued
 * with, then deletes their failures from the run's records. A producer
 * killed in between leaves the failures, so the next enqueue queues those
 * chunks again under the same job ids, which BullMQ ignores while it keeps
 * the jobs.
 *
 * @param texts - text of each document by id
 */
export async function requeueFailures(
  queue: Queue,
  store: RunStore,
  generation: number | undefined,
  failures: StoredFailure[],
  texts: Map<string, string>,
  settings: Settings,
  summary: EnqueueSummary,
): Promise<void> {
  const jobs: QueueJob[] = [];
  for (let i = 0; i < failures.length; i += settings.chunksPerJob) {
    const failed = failures.slice(i, i + settings.chunksPerJob);
    const chunks = failed.map(({ id, k, range }): QueuedChunk => {
      const slice = (start: number, end: number) =>
        sliceCodePoints(texts.get(id)!, start, end);
      const context = chunkContext(range, slice);
      return {
        id,
        k,
        range,
        text: slice(range.start, range.end),
        ...(context ? { context } : {}),
      };
    });
    // The failed jobs keep their ids in BullMQ for days, so the new job's
    // id also hashes the ids of the jobs whose chunks it runs again.
    const retryOf = [...new Set(failed.map((f) => f.job))].sort().join(' ');
    jobs.push(extractJob(store.run, generation, chunks, settings, retryOf));
  }

  await retryOnReconnect(() => queue.addBulk(jobs));
  await retryOnReconnect(() => store.clearFailures(failures));
  summary.retried += new Set(failures.map((f) => f.id)).size;
  summary.chunks += failures.length;
  summary.jobs += jobs.length;
}

/** A job as BullMQ's addBulk takes it. */
type QueueJob = { name: string; data: JobData; opts: JobsOptions };

/** Builds an extraction job that carries these chunks. */
function extractJob(
  run: string,
  generation: number | undefined,
  chunks: QueuedChunk[],
  settings: Settings,
  retryOf = '',
): QueueJob {
  const data: JobData = {
    run,
    ...(generation === undefined ? {} : { generation }),
    schema: settings.schema,
    chunks,
  };
  const id = jobId(run, generation, chunks, retryOf);
  return {
    name: 'extract',
    data,
    opts: { ...jobOptions(settings), jobId: id },
  };
}

/**
 * Builds a job id from the run, its generation and the chunks the job
 * carries: `<run>.<generation>-<hash>`, or `<run>.<hash>` for a run without
 * a generation. BullMQ ignores a job whose id it still keeps, finished ones
 * included, so the generation keeps the jobs of a run queued again after
 * `forget` from being dropped as those of the forgotten run. Document ids
 * may hold any character, so they are hashed rather than embedded.
 *
 * @param retryOf - ids of the failed jobs whose chunks this job runs
 *   again, or '' for a first job
 */
function jobId(
  run: string,
  generation: number | undefined,
  chunks: QueuedChunk[],
  retryOf = '',
): string {
  const hash = createHash('sha256');
  if (retryOf) hash.update(`retry of ${retryOf}\u0000`);
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

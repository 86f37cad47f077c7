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
import {
  readCsvDocuments,
  type CsvSourceOptions,
  type RejectedRow,
  type SourceDocument,
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
  const summary: EnqueueSummary = {
    documents: 0,
    chunks: 0,
    jobs: 0,
    alreadyQueued: 0,
    rejected: 0,
  };
  const absFile = resolve(file);
  const runDir = join(settings.outputDir, store.run);
  await mkdir(runDir, { recursive: true });
  const rejectsPath = join(runDir, 'rejects.jsonl');
  let batch: SourceDocument[] = [];

  const reject = async (row: RejectedRow) => {
    summary.rejected++;
    log.warn(
      { file: row.file, line: row.line, id: row.id, reason: row.reason },
      'row rejected',
    );
    await appendFile(rejectsPath, JSON.stringify(row) + '\n');
    await store.count('rejected', 1);
  };

  const flush = async () => {
    const docs = batch;
    batch = [];
    const existing = await store.lookup(docs.map((d) => d.id));
    const fresh: SourceDocument[] = [];
    const seen = new Map<string, number>();
    for (let i = 0; i < docs.length; i++) {
      const doc = docs[i];
      const prior = existing[i];
      if (prior && prior.file === absFile && prior.line === doc.line) {
        summary.alreadyQueued++;
      } else if (prior || seen.has(doc.id)) {
        const firstLine = prior
          ? `${prior.file} line ${prior.line}`
          : `line ${seen.get(doc.id)}`;
        await reject({
          file,
          line: doc.line,
          id: doc.id,
          reason: `duplicate id; first seen at ${firstLine}`,
        });
      } else {
        seen.set(doc.id, doc.line);
        fresh.push(doc);
      }
    }
    await queueDocuments(
      queue,
      store,
      fresh,
      absFile,
      settings,
      chunkLength,
      summary,
    );
  };

  for await (const event of readCsvDocuments(file, source)) {
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

async function queueDocuments(
  queue: Queue,
  store: RunStore,
  docs: SourceDocument[],
  file: string,
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
      file,
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
  await queue.addBulk(jobs);
  await store.record(records);
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

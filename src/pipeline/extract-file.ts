import type { Logger } from 'pino';

import { OutputFile } from '../output/output-file.js';
import { planChunks, type PlannedChunk } from '../chunking/plan.js';
import type { Entity } from '../engine/entity.js';
import {
  formatLine,
  mergeChunks,
  type DocumentLine,
} from '../output/document-line.js';
import {
  readCsvDocuments,
  type CsvSourceOptions,
  type RejectedRow,
} from '../producer/csv-source.js';
import type { Engine } from './engine.js';
import { IdSet } from './id-set.js';
import { Progress } from './progress.js';

/**
 * Chunks sent to a pool thread as one task: enough for full ONNX batches,
 * few enough that two threads finish the last tasks close together.
 */
export const EXTRACT_TASK_CHUNKS = 32;

/** Counts reported by a finished extract run. */
export interface ExtractSummary {
  documents: number;
  chunks: number;
  rejected: number;
  failed: number;
}

interface PendingDocument {
  id: string;
  line: Promise<DocumentLine>;
}

/** Chunks of several documents sent to the pool as one task. */
interface TaskGroup {
  chunks: PlannedChunk[];
  result?: Promise<ChunkOutcome[]>;
  resolvers: ((outcomes: ChunkOutcome[]) => void)[];
}

/**
 * Runs the whole engine on one CSV file without Redis and writes one JSONL
 * line per document in input order. Rejected rows go to a rejects file.
 */
export async function extractFile(
  engine: Engine,
  input: string,
  output: string,
  rejectsPath: string,
  source: CsvSourceOptions,
  log: Logger,
): Promise<ExtractSummary> {
  const { settings, pool } = engine;
  const out = await OutputFile.open(output, {
    inputs: [input],
    label: `output ${output}`,
  });
  let rejects: OutputFile;
  try {
    rejects = await OutputFile.open(rejectsPath, {
      inputs: [input],
      label: `rejects file ${rejectsPath}`,
    });
  } catch (err) {
    await out.abort();
    throw err;
  }
  const seenIds = new IdSet();
  const summary: ExtractSummary = {
    documents: 0,
    chunks: 0,
    rejected: 0,
    failed: 0,
  };
  const progress = new Progress(log, 'documents', settings.progressSeconds);
  // Enough tasks in flight to keep every thread busy while results are written.
  const maxInFlight = pool.threads * 3;
  const fifo: PendingDocument[] = [];
  let group = newGroup();
  const running = new Set<Promise<void>>();

  const submit = () => {
    if (group.chunks.length === 0) return;
    const current = group;
    group = newGroup();
    const task = runGroup(engine, current.chunks, log)
      .then((outcomes) => current.resolvers.forEach((r) => r(outcomes)))
      .finally(() => running.delete(task));
    running.add(task);
  };

  const drainHead = async () => {
    const head = fifo.shift()!;
    const line = await head.line;
    if (line.error !== undefined) summary.failed++;
    await out.write(formatLine(line) + '\n');
    progress.add();
  };

  try {
    for await (const event of readCsvDocuments(input, {
      ...source,
      onProgress: (f) => progress.setFraction(f),
    })) {
      if (event.type === 'reject') {
        summary.rejected++;
        logReject(log, event.reject);
        await rejects.write(JSON.stringify(event.reject) + '\n');
        continue;
      }
      const doc = event.document;
      // The first row with an id wins, as in a queued run.
      if (!seenIds.add(doc.id)) {
        const reject: RejectedRow = {
          file: input,
          line: doc.line,
          id: doc.id,
          reason: 'duplicate id; an earlier row has the same id',
        };
        summary.rejected++;
        logReject(log, reject);
        await rejects.write(JSON.stringify(reject) + '\n');
        continue;
      }
      const chunks = planChunks(
        doc.text,
        engine.chunkLength,
        settings.chunkOverlap,
      );
      summary.documents++;
      summary.chunks += chunks.length;
      fifo.push({
        id: doc.id,
        line: documentLine(
          doc.id,
          chunks,
          () => group,
          submit,
          EXTRACT_TASK_CHUNKS,
        ),
      });
      if (group.chunks.length >= EXTRACT_TASK_CHUNKS) submit();
      while (running.size >= maxInFlight || fifo.length > maxInFlight * 64) {
        submit();
        await drainHead();
      }
    }
    submit();
    while (fifo.length > 0) await drainHead();
    // A file whose every row was rejected leaves an earlier output in place:
    // the command fails, and an empty file would replace good results.
    if (summary.documents === 0 && summary.rejected > 0) await out.abort();
    else await out.commit();
    await rejects.commit();
  } catch (err) {
    // The pool closes next, and stopping a thread inside ONNX Runtime aborts
    // the whole process, so the tasks already sent finish first.
    await Promise.allSettled(running);
    await Promise.all([out.abort(), rejects.abort()]);
    throw err;
  } finally {
    progress.stop();
  }
  return summary;
}

function newGroup(): TaskGroup {
  return { chunks: [], resolvers: [] };
}

/**
 * Adds a document's chunks to the open task group, submitting full groups,
 * and returns a promise of its merged line. A failed task gives the line an
 * error instead of entities.
 */
function documentLine(
  id: string,
  chunks: PlannedChunk[],
  currentGroup: () => TaskGroup,
  submit: () => void,
  groupSize: number,
): Promise<DocumentLine> {
  const parts: Promise<ChunkOutcome>[] = [];
  for (const chunk of chunks) {
    const group = currentGroup();
    const slot = group.chunks.length;
    group.chunks.push(chunk);
    group.result ??= new Promise<ChunkOutcome[]>((resolve) =>
      group.resolvers.push(resolve),
    );
    parts.push(group.result.then((all) => all[slot]));
    if (group.chunks.length >= groupSize) submit();
  }
  return Promise.all(parts).then((outcomes) => {
    const failed = outcomes.find(
      (o): o is { error: string } => !Array.isArray(o),
    );
    const good = chunks
      .map((c, i) => ({ range: c.range, entities: outcomes[i] }))
      .filter((c): c is { range: typeof c.range; entities: Entity[] } =>
        Array.isArray(c.entities),
      );
    return mergeChunks(id, good, failed?.error);
  });
}

/** A chunk's entities, or the error that made it fail for good. */
type ChunkOutcome = Entity[] | { error: string };

/**
 * Runs one task with retries. When a task of several chunks fails for good,
 * each chunk is retried alone, so one bad chunk fails only its document.
 */
async function runGroup(
  engine: Engine,
  chunks: PlannedChunk[],
  log: Logger,
): Promise<ChunkOutcome[]> {
  try {
    return await runWithRetry(engine, chunks, log);
  } catch (err) {
    if (chunks.length === 1) return [{ error: errorMessage(err) }];
  }
  const outcomes: ChunkOutcome[] = [];
  for (const chunk of chunks) {
    try {
      outcomes.push((await runWithRetry(engine, [chunk], log))[0]);
    } catch (err) {
      outcomes.push({ error: errorMessage(err) });
    }
  }
  return outcomes;
}

async function runWithRetry(
  engine: Engine,
  chunks: PlannedChunk[],
  log: Logger,
): Promise<Entity[][]> {
  const attempts = engine.settings.attempts;
  for (let attempt = 1; ; attempt++) {
    try {
      return await engine.pool.run({
        texts: chunks.map((c) => c.text),
        schema: engine.settings.schema,
      });
    } catch (err) {
      // A text too long for the model fails the same way every time.
      if (attempt >= attempts || err instanceof RangeError) throw err;
      log.warn(
        { err, attempt, attempts, chunks: chunks.length },
        'extraction task failed; retrying',
      );
    }
  }
}

function logReject(log: Logger, reject: RejectedRow): void {
  log.warn(
    {
      file: reject.file,
      line: reject.line,
      id: reject.id,
      reason: reject.reason,
    },
    'row rejected',
  );
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? `${err.name}: ${err.message}` : String(err);
}

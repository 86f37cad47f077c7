import type { Logger } from 'pino';

import { OutputFile } from '../output/output-file.js';
import { RejectsFile } from '../output/rejects-file.js';
import { chunkTask, planChunks, type PlannedChunk } from '../chunking/plan.js';
import {
  errorLine,
  PluginStackLog,
  type TextOutcome,
} from '../engine/text-outcome.js';
import { failsEveryAttempt } from '../errors/errors.js';
import {
  formatLine,
  mergeChunks,
  type ChunkEntities,
  type DocumentLine,
} from '../output/document-line.js';
import {
  readCsvDocuments,
  type CsvSourceOptions,
  type RejectedRow,
} from '../producer/csv-source.js';
import { isStandardInput } from '../producer/open-input.js';
import type { Engine } from './engine.js';
import { IdSet } from './id-set.js';
import { Progress } from './progress.js';

/**
 * Chunks sent to a pool thread as one task. A task's chunks are sorted by
 * length before they are batched, so a larger task pads less. On 10,000 news
 * sentences with 2 threads, 128 took 17 % less time than 32, and 192 no less
 * than 128. A task is still small enough that two threads finish the last
 * tasks close together.
 */
export const EXTRACT_TASK_CHUNKS = 128;

/** Counts reported by a finished extract run. */
export interface ExtractSummary {
  documents: number;
  chunks: number;
  rejected: number;
  failed: number;
}

/** An accepted document whose line waits for the outcomes of its chunks. */
interface PendingDocument {
  id: string;
  /** Input line of the document's row, for the log of a failure. */
  line: number;
  chunks: PlannedChunk[];
  /** Outcome of each chunk, by chunk index, as its task finishes. */
  outcomes: ChunkOutcome[];
  /** Chunks whose task has not finished yet. */
  waiting: number;
}

/** Chunks of several documents sent to the pool as one task. */
interface TaskGroup {
  chunks: PlannedChunk[];
  /** Document of each chunk, and the chunk's index in that document. */
  documents: PendingDocument[];
  slots: number[];
}

/**
 * Runs the whole engine on one CSV file without Redis and writes one JSONL
 * line per document in input order. Rejected rows go to a rejects file,
 * which is written only when a row is rejected. A run without rejected rows
 * deletes an earlier rejects file at that path once its output is committed.
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
  let rejects: RejectsFile;
  try {
    rejects = await RejectsFile.open(rejectsPath, {
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
  // Documents read but not yet written stay in memory. Room for two full
  // tasks per slot keeps the slots filled with full tasks of short documents.
  const maxPending = maxInFlight * EXTRACT_TASK_CHUNKS * 2;
  const fifo: PendingDocument[] = [];
  const pluginStacks = new PluginStackLog(log);
  let group = newGroup();
  const running = new Set<Promise<void>>();
  // Resolves the wait of drainFinished when a task finishes.
  let wake: (() => void) | undefined;

  const submit = () => {
    if (group.chunks.length === 0) return;
    const current = group;
    group = newGroup();
    const task = runGroup(engine, current.chunks, log).then((outcomes) => {
      pluginStacks.note(outcomes);
      // The task leaves `running` before the wake-up, so the loop that
      // waited for a free slot counts one task fewer.
      running.delete(task);
      settleGroup(current, outcomes);
      wake?.();
    });
    running.add(task);
  };

  // Writes the finished documents at the head of the queue as one string,
  // waiting for the first when none has finished. A write per document cost
  // the main thread about 6 µs (Node 20, 2-core VM), more than formatting
  // its line.
  const drainFinished = async () => {
    while (fifo[0].waiting > 0) {
      await new Promise<void>((resolve) => (wake = resolve));
      wake = undefined;
    }
    let text = '';
    let written = 0;
    for (; written < fifo.length && fifo[written].waiting === 0; written++) {
      const line = documentLine(fifo[written]);
      if (line.error !== undefined) {
        summary.failed++;
        log.warn(
          {
            file: inputFile,
            line: fifo[written].line,
            id: line.id,
            error: line.error,
          },
          'document failed; its line carries the error',
        );
      }
      text += formatLine(line) + '\n';
    }
    fifo.splice(0, written);
    await out.write(text);
    progress.add(written);
  };

  // Rejects name standard input "-" however it was given, as a run does.
  const inputFile = isStandardInput(input) ? '-' : input;
  try {
    for await (const event of readCsvDocuments(input, {
      ...source,
      onProgress: (f) => progress.setFraction(f),
      log,
    })) {
      if (event.type === 'reject') {
        const reject = { ...event.reject, file: inputFile };
        summary.rejected++;
        logReject(log, reject);
        await rejects.write(JSON.stringify(reject) + '\n');
        continue;
      }
      const doc = event.document;
      // The first row with an id wins, as in a queued run.
      if (!seenIds.add(doc.id, doc.line)) {
        const firstLine = seenIds.firstLine(doc.id);
        const reject: RejectedRow = {
          file: inputFile,
          line: doc.line,
          id: doc.id,
          // NOTE: a line past 2^32 - 1 is not stored, so it is not named.
          reason:
            firstLine === undefined
              ? 'duplicate id; an earlier row has the same id'
              : `duplicate id; first seen at line ${firstLine}`,
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
      const pending: PendingDocument = {
        id: doc.id,
        line: doc.line,
        chunks,
        outcomes: new Array<ChunkOutcome>(chunks.length),
        waiting: chunks.length,
      };
      fifo.push(pending);
      for (let slot = 0; slot < chunks.length; slot++) {
        group.chunks.push(chunks[slot]);
        group.documents.push(pending);
        group.slots.push(slot);
        if (group.chunks.length >= EXTRACT_TASK_CHUNKS) submit();
      }
      while (running.size >= maxInFlight || fifo.length > maxPending) {
        submit();
        await drainFinished();
      }
    }
    submit();
    while (fifo.length > 0) await drainFinished();
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
  return { chunks: [], documents: [], slots: [] };
}

/** Hands each outcome of a finished task to the document of its chunk. */
function settleGroup(group: TaskGroup, outcomes: ChunkOutcome[]): void {
  for (let i = 0; i < group.chunks.length; i++) {
    const document = group.documents[i];
    document.outcomes[group.slots[i]] = outcomes[i];
    document.waiting--;
  }
}

/**
 * Merges the outcomes of a document's chunks into its line. A failed chunk
 * gives the line the error of the first failed chunk, and the entities of
 * the other chunks.
 */
function documentLine(document: PendingDocument): DocumentLine {
  const good: ChunkEntities[] = [];
  let error: string | undefined;
  for (let i = 0; i < document.chunks.length; i++) {
    const outcome = document.outcomes[i];
    if (Array.isArray(outcome)) {
      good.push({ range: document.chunks[i].range, entities: outcome });
    } else {
      error ??= outcome.error;
    }
  }
  return mergeChunks(document.id, good, error);
}

/**
 * A chunk's entities, or the error that made it fail for good: a rule
 * plugin's failure on its text, or the failure of its task.
 */
type ChunkOutcome = TextOutcome;

/**
 * Runs one task with retries. A rule plugin that fails on a chunk fails
 * only that chunk, without a retry, because a plugin must be pure and so
 * would fail the same way again. When the task itself fails for good (a
 * model run, a thread, a time limit), each chunk is retried alone, so one
 * bad chunk fails only its document. A task that timed out inside a rule
 * plugin, or contains a chunk too long for the model, would fail the same way
 * on every attempt, so its chunks run alone at once.
 */
async function runGroup(
  engine: Engine,
  chunks: PlannedChunk[],
  log: Logger,
): Promise<ChunkOutcome[]> {
  try {
    return await runWithRetry(engine, chunks, log);
  } catch (err) {
    if (chunks.length === 1) return [{ error: errorLine(err) }];
  }
  const outcomes: ChunkOutcome[] = [];
  for (const chunk of chunks) {
    try {
      outcomes.push((await runWithRetry(engine, [chunk], log))[0]);
    } catch (err) {
      outcomes.push({ error: errorLine(err) });
    }
  }
  return outcomes;
}

async function runWithRetry(
  engine: Engine,
  chunks: PlannedChunk[],
  log: Logger,
): Promise<TextOutcome[]> {
  const attempts = engine.settings.attempts;
  for (let attempt = 1; ; attempt++) {
    try {
      return await engine.pool.run(chunkTask(chunks, engine.settings.schema));
    } catch (err) {
      if (attempt >= attempts || failsEveryAttempt(err)) throw err;
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

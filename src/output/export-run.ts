import { resolve } from 'node:path';

import type { Logger } from 'pino';

import { RunNotFinishedError } from '../errors/errors.js';
import type { RunStore } from '../queue/run-store.js';
import {
  formatLine,
  mergeChunks,
  type ChunkEntities,
  type DocumentLine,
} from './document-line.js';
import { OutputFile } from './output-file.js';
import {
  partsDir,
  readParts,
  type PartRecord,
  type SkippedLines,
} from './part-files.js';

/** Counts reported by an export. */
export interface ExportSummary {
  documents: number;
  failed: number;
  /** Documents with chunks that have no result yet. */
  incomplete: number;
  /** Part-file lines that did not parse. */
  skippedLines: number;
}

/**
 * Writes one line per document of a run in input order, merging chunk
 * results from every worker's part file of the run's current generation. A
 * chunk result written twice, by a retry after a killed worker, counts once.
 * Part files of a forgotten run of the same name are not read.
 * onFailed receives each document written with an error.
 *
 * @throws RunNotFinishedError when documents are unfinished and `partial` is
 *   false
 */
export async function exportRun(
  store: RunStore,
  outputDir: string,
  output: string,
  partial: boolean,
  log: Logger,
  onFailed?: (doc: { id: string; digest?: string }) => void,
): Promise<ExportSummary> {
  // TODO: results are grouped in memory, about 1 KB per document; a run of
  // tens of millions of documents needs an external sort instead.
  const stats: SkippedLines = { skipped: 0, first: [] };
  const generation = await store.generation();
  const byDoc = await groupResults(outputDir, store.run, generation, stats);
  // A worker that cannot write a chunk's error line still records the
  // failure in Redis, so the document gets its error from there.
  const failed = new Map<string, Map<number, string>>();
  for await (const { id, k, error } of store.failures()) {
    let chunks = failed.get(id);
    if (!chunks) failed.set(id, (chunks = new Map()));
    chunks.set(k, error);
  }

  // The documents are read from Redis once, so the lines written are those
  // of the documents checked here.
  const ids: string[] = [];
  const digests: (string | undefined)[] = [];
  const chunkCounts: number[] = [];
  const summary: ExportSummary = {
    documents: 0,
    failed: 0,
    incomplete: 0,
    skippedLines: stats.skipped,
  };
  for await (const doc of store.documents()) {
    ids.push(doc.id);
    if (onFailed) digests.push(doc.digest);
    chunkCounts.push(doc.chunks);
    const parts = byDoc.get(doc.id);
    const errors = failed.get(doc.id);
    let done = 0;
    for (let k = 0; k < doc.chunks; k++) {
      if (parts?.has(k) || errors?.has(k)) done++;
    }
    if (done < doc.chunks) summary.incomplete++;
  }
  if (stats.skipped > 0) {
    log.warn(
      { run: store.run, lines: stats.skipped, first: stats.first },
      'skipped part-file lines that do not parse',
    );
  }
  if (summary.incomplete > 0 && !partial) {
    const advice = (await countersFinished(store))
      ? 'Its counters say every chunk was done, so unless a worker is still retrying one, results are missing ' +
        `from its part files in ${partsDir(resolve(outputDir), store.run)}, deleted or damaged. ` +
        'Forget the run and enqueue its input again, or pass --partial'
      : 'Wait for the workers to drain the queue (uie-batch work --exit-when-drained), or pass --partial';
    throw new RunNotFinishedError(
      `run ${store.run} is not finished: ${summary.incomplete} documents have chunks without results. ${advice}`,
    );
  }

  const out = await OutputFile.open(output);
  try {
    let pending = '';
    for (let i = 0; i < ids.length; i++) {
      const line = documentLine(
        ids[i],
        chunkCounts[i],
        byDoc.get(ids[i]),
        failed.get(ids[i]),
      );
      if (line.error !== undefined) {
        summary.failed++;
        onFailed?.({ id: ids[i], digest: digests[i] });
      }
      summary.documents++;
      pending += formatLine(line) + '\n';
      if (pending.length >= WRITE_CHARS) {
        await out.write(pending);
        pending = '';
      }
    }
    if (pending) await out.write(pending);
    await out.commit();
  } catch (err) {
    await out.abort();
    throw err;
  }
  return summary;
}

/** Returns whether the run's counters record a result or failure for every chunk. */
async function countersFinished(store: RunStore): Promise<boolean> {
  const stats = await store.stats();
  return (stats.done ?? 0) + (stats.failedChunks ?? 0) >= (stats.chunks ?? 0);
}

// Lines are written in pieces of at least this many UTF-16 code units. One
// write per line made exportRun about 15 ms slower on a run of 2,500
// sentences (median of 15 runs).
const WRITE_CHARS = 64 * 1024;

/**
 * Reads the run's part files into results by document and chunk index. A
 * success wins over an error from an earlier attempt.
 */
async function groupResults(
  outputDir: string,
  run: string,
  generation: number | undefined,
  stats: SkippedLines,
): Promise<Map<string, Map<number, PartRecord>>> {
  const byDoc = new Map<string, Map<number, PartRecord>>();
  for await (const record of readParts(outputDir, run, generation, stats)) {
    let chunks = byDoc.get(record.id);
    if (!chunks) byDoc.set(record.id, (chunks = new Map()));
    const prior = chunks.get(record.k);
    if (!prior || 'error' in prior) chunks.set(record.k, record);
  }
  return byDoc;
}

/**
 * Merges a document's chunk results into its output line. The line carries
 * the error of its first chunk that failed or has no result.
 *
 * @param failed - errors recorded in Redis for chunks without a part-file
 *   line, by chunk index
 */
function documentLine(
  id: string,
  chunkCount: number,
  chunks: Map<number, PartRecord> = new Map(),
  failed: Map<number, string> = new Map(),
): DocumentLine {
  const good: ChunkEntities[] = [];
  let error: string | undefined;
  for (let k = 0; k < chunkCount; k++) {
    const part = chunks.get(k);
    if (!part)
      error ??=
        failed.get(k) ??
        `not processed: chunk ${k + 1} of ${chunkCount} has no result`;
    else if ('error' in part) error ??= part.error;
    else good.push({ range: part.range, entities: part.entities });
  }
  return mergeChunks(id, good, error);
}

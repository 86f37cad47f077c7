import type { Logger } from 'pino';

import { RunNotFinishedError } from '../errors/errors.js';
import type { RunStore } from '../queue/run-store.js';
import {
  formatLine,
  mergeChunks,
  type ChunkEntities,
} from './document-line.js';
import { OutputFile } from './output-file.js';
import { readParts, type PartRecord } from './part-files.js';

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
): Promise<ExportSummary> {
  // TODO: results are grouped in memory, about 1 KB per document; a run of
  // tens of millions of documents needs an external sort instead.
  const stats = { skipped: 0 };
  const generation = await store.generation();
  const byDoc = new Map<string, Map<number, PartRecord>>();
  const records = readParts(outputDir, store.run, generation, stats);
  for await (const record of records) {
    let chunks = byDoc.get(record.id);
    if (!chunks) byDoc.set(record.id, (chunks = new Map()));
    const prior = chunks.get(record.k);
    // A success wins over an error from an earlier attempt.
    if (!prior || 'error' in prior) chunks.set(record.k, record);
  }

  const summary: ExportSummary = {
    documents: 0,
    failed: 0,
    incomplete: 0,
    skippedLines: stats.skipped,
  };
  for await (const doc of store.documents()) {
    const done = byDoc.get(doc.id)?.size ?? 0;
    if (done < doc.chunks) summary.incomplete++;
  }
  if (summary.incomplete > 0 && !partial) {
    throw new RunNotFinishedError(
      `run ${store.run} is not finished: ${summary.incomplete} documents have chunks without results. ` +
        'Wait for the workers to drain the queue (uie-batch work --exit-when-drained), or pass --partial',
    );
  }
  if (stats.skipped > 0) {
    log.warn(
      { run: store.run, lines: stats.skipped },
      'skipped part-file lines that do not parse',
    );
  }

  const out = await OutputFile.open(output);
  try {
    for await (const doc of store.documents()) {
      const chunks = byDoc.get(doc.id) ?? new Map<number, PartRecord>();
      const good: ChunkEntities[] = [];
      let error: string | undefined;
      for (let k = 0; k < doc.chunks; k++) {
        const part = chunks.get(k);
        if (!part)
          error ??= `not processed: chunk ${k + 1} of ${doc.chunks} has no result`;
        else if ('error' in part) error ??= part.error;
        else good.push({ range: part.range, entities: part.entities });
      }
      const line = mergeChunks(doc.id, good, error);
      if (error !== undefined) summary.failed++;
      summary.documents++;
      await out.write(formatLine(line) + '\n');
    }
    await out.commit();
  } catch (err) {
    await out.abort();
    throw err;
  }
  return summary;
}

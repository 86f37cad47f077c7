import type { ChunkRange } from '../chunking/chunker.js';
import { dedupeEntities, type Entity } from '../engine/entity.js';

/** One output line: a document's entities with document-level offsets. */
export interface DocumentLine {
  id: string;
  entities: Entity[];
  /** Set when the document, or part of it, failed for good. */
  error?: string;
}

/** Entities of one chunk, with offsets relative to the chunk. */
export interface ChunkEntities {
  range: ChunkRange;
  entities: Entity[];
}

/**
 * Merges chunk results into one document line: shifts offsets to the
 * document, keeps each entity only in the chunk that owns its start, and
 * removes doubles left by retries and overlapping windows.
 */
export function mergeChunks(
  id: string,
  chunks: ChunkEntities[],
  error?: string,
): DocumentLine {
  const all: Entity[] = [];
  for (const { range, entities } of chunks) {
    for (const e of entities) {
      const start = e.start + range.start;
      if (start < range.keepFrom || start >= range.keepTo) continue;
      all.push({ ...e, start, end: e.end + range.start });
    }
  }
  const line: DocumentLine = { id, entities: dedupeEntities(all) };
  if (error !== undefined) line.error = error;
  return line;
}

/** Serialises a line with a fixed key order. */
export function formatLine(line: DocumentLine): string {
  const entities = line.entities.map((e) => ({
    label: e.label,
    text: e.text,
    start: e.start,
    end: e.end,
    score: e.score,
    source: e.source,
    ...(e.value !== undefined ? { value: e.value } : {}),
  }));
  const out: Record<string, unknown> = { id: line.id, entities };
  if (line.error !== undefined) out.error = line.error;
  return JSON.stringify(out);
}

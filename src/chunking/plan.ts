import { checkChunkOverlap } from '../config/config.js';
import { codePointIndex } from '../tokenizer/tokenizer.js';
import { chunkText, type ChunkRange } from './chunker.js';

/** A chunk's range together with its text. */
export interface PlannedChunk {
  range: ChunkRange;
  text: string;
}

/**
 * Splits a document into chunks that fit the model and slices their texts.
 *
 * @throws ConfigError when overlap is more than half of maxLength
 */
export function planChunks(
  text: string,
  maxLength: number,
  overlap: number,
): PlannedChunk[] {
  // chunkText rejects such an overlap too, but without naming the setting.
  checkChunkOverlap(
    overlap,
    maxLength,
    `the chunk length for this model and schema (${maxLength})`,
  );
  const ranges = chunkText(text, maxLength, overlap);
  // chunkText keeps a text this short whole, as one chunk.
  if (text.length <= maxLength) return ranges.map((range) => ({ range, text }));
  const index = codePointIndex(text);
  return ranges.map((range) => ({
    range,
    text: index.slice(range.start, range.end),
  }));
}

/**
 * Returns the maximum chunk length, in characters, for a model's max_seq_len
 * and a schema, so the packed row `[CLS] prompt [SEP] text [SEP]` fits.
 */
export function chunkLengthFor(
  maxSeqLen: number,
  schema: string[],
  configured: number,
): number {
  const longestPrompt = Math.max(...schema.map((l) => [...l].length));
  const fits = maxSeqLen - 3 - longestPrompt;
  if (configured > 0 && configured > fits) {
    throw new RangeError(
      `chunkChars: expected at most ${fits} for this model (max_seq_len ${maxSeqLen}) and schema, got ${configured}`,
    );
  }
  return configured > 0 ? configured : fits;
}

import { checkChunkOverlap, envName } from '../config/config.js';
import { ConfigError } from '../errors/errors.js';
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
 *
 * @throws ConfigError when the longest label leaves no room for a chunk
 * @throws RangeError when chunkChars is set above the length that fits
 */
export function chunkLengthFor(
  maxSeqLen: number,
  schema: string[],
  configured: number,
): number {
  const longestPrompt = Math.max(...schema.map((l) => [...l].length));
  const fits = maxSeqLen - SPECIAL_TOKENS - longestPrompt;
  if (fits < MIN_CHUNK_LENGTH) {
    const label = schema.find((l) => [...l].length === longestPrompt)!;
    throw labelTooLong(label, longestPrompt, maxSeqLen);
  }
  if (configured > 0 && configured > fits) {
    throw new RangeError(
      `chunkChars: expected at most ${fits} for this model (max_seq_len ${maxSeqLen}) and schema, got ${configured}`,
    );
  }
  return configured > 0 ? configured : fits;
}

// [CLS] and two [SEP] tokens in every packed row.
const SPECIAL_TOKENS = 3;
// chunkText rejects a shorter maximum length.
const MIN_CHUNK_LENGTH = 8;
// Characters of a label that a message shows.
const LABEL_PREVIEW = 20;

function labelTooLong(
  label: string,
  length: number,
  maxSeqLen: number,
): ConfigError {
  const points = [...label];
  const preview =
    points.length > LABEL_PREVIEW
      ? `${points.slice(0, LABEL_PREVIEW).join('')}…`
      : label;
  const limit = maxSeqLen - SPECIAL_TOKENS - MIN_CHUNK_LENGTH;
  return new ConfigError(
    `schema (${envName('schema')}): label ${JSON.stringify(preview)} is ${length} characters long, too long for this model: ` +
      `with max_seq_len ${maxSeqLen}, a label may have at most ${limit} characters, ` +
      `because each row also needs ${SPECIAL_TOKENS} special tokens and at least ${MIN_CHUNK_LENGTH} characters of text. ` +
      'Shorten the label',
  );
}

import { checkChunkOverlap, envName } from '../config/config.js';
import type { ExtractTask } from '../engine/extract-task.js';
import { ConfigError } from '../errors/errors.js';
import { codePointIndex } from '../tokenizer/tokenizer.js';
import { chunkText, type ChunkRange } from './chunker.js';

/** Text around a window that rule plugins read with it. */
export interface ChunkContext {
  before: string;
  after: string;
}

/** A chunk's range together with its text. */
export interface PlannedChunk {
  range: ChunkRange;
  text: string;
  /** Plugin context, set on windows cut inside a sentence ({@link ChunkRange}). */
  context?: ChunkContext;
}

/**
 * Slices the plugin context of a chunk from its document.
 *
 * @param slice - returns the document's code points [start, end)
 */
export function chunkContext(
  range: ChunkRange,
  slice: (start: number, end: number) => string,
): ChunkContext | undefined {
  if (range.contextFrom === undefined || range.contextTo === undefined) {
    return undefined;
  }
  return {
    before: slice(range.contextFrom, range.start),
    after: slice(range.end, range.contextTo),
  };
}

/** Builds the task for planned or queued chunks. */
export function chunkTask(
  chunks: readonly { text: string; context?: ChunkContext }[],
  schema: string[],
): ExtractTask {
  const task: ExtractTask = { texts: chunks.map((c) => c.text), schema };
  if (chunks.some((c) => c.context !== undefined)) {
    task.contexts = chunks.map((c) => c.context);
  }
  return task;
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
  const { slice } = codePointIndex(text);
  return ranges.map((range) => {
    const context = chunkContext(range, slice);
    return {
      range,
      text: slice(range.start, range.end),
      ...(context ? { context } : {}),
    };
  });
}

/**
 * Returns the maximum chunk length, in characters, for a model's max_seq_len
 * and a schema, so the packed row `[CLS] prompt [SEP] text [SEP]` fits.
 *
 * @throws ConfigError when the longest label leaves no room for a chunk
 *   or for twice the overlap, or when chunkChars is set above the length
 *   that fits
 */
export function chunkLengthFor(
  maxSeqLen: number,
  schema: string[],
  configured: number,
  overlap = 0,
): number {
  const longestPrompt = Math.max(...schema.map((l) => [...l].length));
  const fits = maxSeqLen - SPECIAL_TOKENS - longestPrompt;
  const label = schema.find((l) => [...l].length === longestPrompt)!;
  if (fits < MIN_CHUNK_LENGTH) {
    throw labelTooLong(label, longestPrompt, maxSeqLen);
  }
  // Checked here so that the message blames the label, not chunkOverlap,
  // when the label leaves too little room for the overlap. When even a
  // two-character label would leave too little, the message names chunkOverlap.
  if (configured === 0 && overlap * 2 > maxSeqLen - SPECIAL_TOKENS - 2) {
    throw new ConfigError(
      `chunkOverlap (${envName('chunkOverlap')}): expected at most ${Math.floor(fits / 2)}, half of the ${fits} characters of text per chunk ` +
        `that this model (max_seq_len ${maxSeqLen}) and schema leave, got ${overlap}`,
    );
  }
  if (configured === 0 && overlap * 2 > fits) {
    throw new ConfigError(
      `schema (${envName('schema')}): label ${JSON.stringify(preview(label))} (${longestPrompt} characters) leaves ${fits} characters of text per chunk ` +
        `for this model (max_seq_len ${maxSeqLen}), less than twice chunkOverlap (${overlap}); ` +
        'shorten the label or lower chunkOverlap',
    );
  }
  if (configured > 0 && configured > fits) {
    throw new ConfigError(
      `chunkChars (${envName('chunkChars')}): expected at most ${fits} for this model (max_seq_len ${maxSeqLen}) and schema, got ${configured}`,
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

/** Returns a label cut to {@link LABEL_PREVIEW} characters for a message. */
function preview(label: string): string {
  const points = [...label];
  return points.length > LABEL_PREVIEW
    ? `${points.slice(0, LABEL_PREVIEW).join('')}…`
    : label;
}

function labelTooLong(
  label: string,
  length: number,
  maxSeqLen: number,
): ConfigError {
  const limit = maxSeqLen - SPECIAL_TOKENS - MIN_CHUNK_LENGTH;
  return new ConfigError(
    `schema (${envName('schema')}): label ${JSON.stringify(preview(label))} is ${length} characters long, too long for this model: ` +
      `with max_seq_len ${maxSeqLen}, a label may have at most ${limit} characters, ` +
      `because each row also needs ${SPECIAL_TOKENS} special tokens and at least ${MIN_CHUNK_LENGTH} characters of text. ` +
      'Shorten the label',
  );
}

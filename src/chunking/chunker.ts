import { countCodePoints } from '../tokenizer/tokenizer.js';

/** A piece of a document, in code-point offsets into the document. */
export interface ChunkRange {
  start: number;
  end: number;
  /**
   * Entities of this chunk are kept only if they start in [keepFrom, keepTo).
   * Windows cut inside a sentence overlap; each owns the middle of the overlap.
   */
  keepFrom: number;
  keepTo: number;
  /**
   * Part of the sentence around a window that rule plugins also read, set
   * on windows cut inside a sentence. With it a time cut by the window's
   * edge, or one that takes its year from an earlier time, is read whole.
   * Spans found there are kept only if they start in the window.
   */
  contextFrom?: number;
  contextTo?: number;
}

/**
 * Code points of sentence text on each side of a window that rule plugins
 * read. Enough for a list or range of dates that began before the window
 * (1998年3月5日、6日……和10日). A longer one loses its year.
 */
export const PLUGIN_CONTEXT = 64;

// Line ends count too: a lone CR (old Mac files), LF, and the Unicode line
// and paragraph separators.
const SENTENCE_END = new Set([
  '。',
  '！',
  '？',
  '；',
  '!',
  '?',
  '\n',
  '\r',
  '\u2028',
  '\u2029',
  '\u0085',
]);

/**
 * Splits text into chunks of at most maxLength code points at sentence ends.
 *
 * Sentences are packed greedily. A sentence longer than maxLength is cut into
 * windows that overlap by `overlap` code points; an entity up to overlap / 2
 * long that crosses a cut lies whole inside the window that owns its start.
 */
export function chunkText(
  text: string,
  maxLength: number,
  overlap: number,
): ChunkRange[] {
  if (maxLength < 8)
    throw new RangeError(`maxLength: expected >= 8, got ${maxLength}`);
  if (overlap < 0 || overlap * 2 > maxLength) {
    throw new RangeError(
      `overlap: expected 0 to ${Math.floor(maxLength / 2)}, got ${overlap}`,
    );
  }
  // A text of at most maxLength UTF-16 units has at most maxLength code
  // points, so packing keeps it whole. Most texts are that short and skip
  // the split into code points.
  if (text.length <= maxLength) {
    const length = countCodePoints(text);
    if (length === 0) return [];
    return [{ start: 0, end: length, keepFrom: 0, keepTo: length }];
  }
  const chars = [...text];
  const chunks: ChunkRange[] = [];
  let chunkStart = 0;
  let chunkEnd = 0;

  const flush = () => {
    if (chunkEnd > chunkStart) {
      chunks.push({
        start: chunkStart,
        end: chunkEnd,
        keepFrom: chunkStart,
        keepTo: chunkEnd,
      });
    }
    chunkStart = chunkEnd;
  };

  for (const [sStart, sEnd] of sentences(chars)) {
    if (sEnd - sStart > maxLength) {
      flush();
      chunks.push(...windows(sStart, sEnd, maxLength, overlap));
      chunkStart = chunkEnd = sEnd;
      continue;
    }
    if (sEnd - chunkStart > maxLength) flush();
    chunkEnd = sEnd;
  }
  flush();
  return chunks;
}

function* sentences(chars: string[]): Generator<[number, number]> {
  let start = 0;
  for (let i = 0; i < chars.length; i++) {
    if (!SENTENCE_END.has(chars[i])) continue;
    // Closing quotes and repeated marks stay with their sentence: 。” or ？！
    let end = i + 1;
    while (
      end < chars.length &&
      (SENTENCE_END.has(chars[end]) || CLOSERS.has(chars[end]))
    )
      end++;
    yield [start, end];
    start = end;
    i = end - 1;
  }
  if (start < chars.length) yield [start, chars.length];
}

const CLOSERS = new Set(['”', '’', '」', '』', '）', ')', '"', "'", '》']);

function windows(
  start: number,
  end: number,
  size: number,
  overlap: number,
): ChunkRange[] {
  const out: ChunkRange[] = [];
  const step = size - overlap;
  const half = Math.floor(overlap / 2);
  for (let s = start; ; s += step) {
    const e = Math.min(s + size, end);
    const first = s === start;
    const last = e === end;
    out.push({
      start: s,
      end: e,
      keepFrom: first ? s : s + half,
      keepTo: last ? e : e - (overlap - half),
      contextFrom: Math.max(start, s - PLUGIN_CONTEXT),
      contextTo: Math.min(end, e + PLUGIN_CONTEXT),
    });
    if (last) break;
  }
  return out;
}

/** A span in token positions of the text part, end exclusive, with its score. */
export interface ScoredSpan {
  start: number;
  end: number;
  score: number;
}

/**
 * Decodes one row's pointer probabilities into spans the way PaddleNLP UIE
 * pairs them: positions above the threshold are candidate starts and ends,
 * walked in order. A start is used by the first end at or after it, and an
 * end takes the latest unused start before it, so `李白出` with a start at 李
 * and ends at 白 and 出 gives only 李白. The score is start × end probability.
 *
 * @param start start probabilities of the row
 * @param end end probabilities of the row
 * @param offset index of the first text token in the row
 * @param length number of text tokens
 */
export function decodeSpans(
  start: Float32Array,
  end: Float32Array,
  offset: number,
  length: number,
  threshold: number,
): ScoredSpan[] {
  const spans: ScoredSpan[] = [];
  // Latest start not yet used by an end, or -1.
  let pending = -1;
  for (let i = 0; i < length; i++) {
    if (start[offset + i] > threshold) pending = i;
    if (end[offset + i] > threshold && pending >= 0) {
      spans.push({
        start: pending,
        end: i + 1,
        score: start[offset + pending] * end[offset + i],
      });
      pending = -1;
    }
  }
  return spans;
}

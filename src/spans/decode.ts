/** A span in token positions of the text part, end exclusive, with its score. */
export interface ScoredSpan {
  start: number;
  end: number;
  score: number;
}

/**
 * Decodes one row's pointer probabilities into spans the way UIE does:
 * every position above the threshold is a candidate start or end, and each
 * end is paired with the nearest start at or before it. A start may serve
 * several ends; the score is start × end probability.
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
  let lastStart = -1;
  for (let i = 0; i < length; i++) {
    if (start[offset + i] > threshold) lastStart = i;
    if (end[offset + i] > threshold && lastStart >= 0) {
      spans.push({
        start: lastStart,
        end: i + 1,
        score: start[offset + lastStart] * end[offset + i],
      });
    }
  }
  return spans;
}

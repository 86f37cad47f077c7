import type { ScoredSpan } from './decode.js';

// ASCII and full-width letters and digits: the characters of an English
// word or a number written inside Chinese text.
const WORD_CHAR = /^[0-9A-Za-z\uFF10-\uFF19\uFF21-\uFF3A\uFF41-\uFF5A]$/;
// Characters no entity starts or ends with: whitespace (U+3000 and line
// breaks too), control characters (\s lacks U+0085, NEXT LINE), emoji and
// other symbols, format characters such as the zero-width joiner, and
// variation selectors. The vocabulary has none of them, so the model gets
// [UNK] for them, as for rare name characters.
const EDGE_JUNK =
  /^[\s\p{Cc}\p{Extended_Pictographic}\p{So}\p{Sk}\p{Cf}\uFE00-\uFE0F]$/u;

/**
 * Trims whitespace, emoji and symbols from both ends of each span, then
 * widens spans that end inside a Latin word or a number to the whole word,
 * so 华为Mate60 is never cut to 华为Mat and 张三😀 becomes 张三. The model
 * reads one token per character and can stop anywhere, including on a line
 * break next to a name. Spans left empty are dropped; spans that become
 * equal are merged, keeping the higher score.
 *
 * @param spans spans in code-point offsets of the text
 * @param chars the text's code points
 */
export function snapSpanEdges(
  spans: ScoredSpan[],
  chars: readonly string[],
): ScoredSpan[] {
  const isWord = (i: number) =>
    i >= 0 && i < chars.length && WORD_CHAR.test(chars[i]);
  const snapped = new Map<string, ScoredSpan>();
  for (const span of spans) {
    let { start, end } = span;
    while (start < end && EDGE_JUNK.test(chars[start])) start++;
    while (end > start && EDGE_JUNK.test(chars[end - 1])) end--;
    if (start === end) continue;
    while (isWord(start - 1) && isWord(start)) start--;
    while (isWord(end - 1) && isWord(end)) end++;
    const key = `${start}:${end}`;
    const seen = snapped.get(key);
    if (!seen || seen.score < span.score) {
      snapped.set(key, { start, end, score: span.score });
    }
  }
  return [...snapped.values()];
}

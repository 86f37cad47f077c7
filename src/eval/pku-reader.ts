import type { InputError } from '../errors/errors.js';
import {
  lineError,
  mapTags,
  type Line,
  type TaggedSpan,
} from './gold-lines.js';
import type { GoldSentence, GoldSpan } from './gold-readers.js';

// Paragraph id token, such as 19980101-01-001-001/m.
const PKU_ID = /^\d{8}-\S*\/m$/;
// word/POS, opening a compound with "[" or closing one with "]TAG".
const PKU_TOKEN = /^(\[?)([^\s/[\]]+)\/([A-Za-z]+)(?:\]([A-Za-z]+))?$/;
// The corpus splits a name into surname and given name (江/nr 泽民/nr) and
// a date into parts (１２月/t ３１日/t). Adjacent t tokens are one entity. An
// nr token joins only a lone surname of one or two characters before it,
// because two names in a row (杜/nr 中武/nr 孙/nr 传刚/nr) are two people.
const JOINED_TAGS = new Set(['nr', 't']);

/**
 * Reads People's Daily 1998 paragraphs of `word/POS` tokens. A bracketed
 * compound `[中国/ns 科学院/n]nt` is one span with the tag after "]".
 */
export async function* readPku(
  file: string,
  lines: AsyncIterable<Line>,
  labels: ReadonlyMap<string, string>,
): AsyncGenerator<GoldSentence> {
  const seen = new Set<string>();
  for await (const line of lines) {
    // Besides the CRLF line ends, stray CRs sit inside some lines.
    const text = line.text.replace(/\r/g, '').trim();
    if (text === '' || seen.has(text)) continue;
    seen.add(text);
    const fail = (reason: string) => lineError(file, line.number, reason);
    const sentence = pkuSentence(text, labels, fail);
    if (sentence.text !== '') yield { ...sentence, line: line.number };
  }
}

function pkuSentence(
  line: string,
  labels: ReadonlyMap<string, string>,
  fail: (reason: string) => InputError,
): Omit<GoldSentence, 'line'> {
  const [id, ...tokens] = line.split(/\s+/);
  if (!PKU_ID.test(id)) {
    throw fail(
      `expected a paragraph id such as 19980101-01-001-001/m as the first ` +
        `token, got "${id}"`,
    );
  }
  const words: string[] = [];
  const pieces: TaggedSpan[] = [];
  let position = 0;
  let bracket: { start: number; piece: number } | undefined;

  for (const token of tokens) {
    const match = PKU_TOKEN.exec(token);
    if (!match) {
      throw fail(
        `invalid token "${token}"; expected word/POS, [word/POS or ` +
          `word/POS]TAG`,
      );
    }
    const [, opens, word, tag, closes] = match;
    if (opens && bracket) {
      throw fail(`"${token}" opens a bracket inside another one`);
    }
    if (opens) bracket = { start: position, piece: pieces.length };
    const length = [...word].length;
    words.push(word);
    pieces.push({ start: position, end: position + length, tag });
    position += length;
    if (closes === undefined) continue;
    if (!bracket) throw fail(`"${token}" closes a bracket that no "[" opened`);
    // The compound replaces its words and takes the tag after "]".
    pieces.splice(bracket.piece, pieces.length - bracket.piece, {
      start: bracket.start,
      end: position,
      tag: closes,
    });
    bracket = undefined;
  }
  if (bracket) throw fail('a bracket opened with "[" is never closed');
  return { text: words.join(''), spans: joinPieces(pieces, labels) };
}

function joinPieces(
  pieces: TaggedSpan[],
  labels: ReadonlyMap<string, string>,
): GoldSpan[] {
  const spans: TaggedSpan[] = [];
  const joined = new Set<TaggedSpan>();
  for (const piece of pieces) {
    if (!labels.has(piece.tag)) continue;
    const last = spans.at(-1);
    let joins =
      last !== undefined &&
      last.tag === piece.tag &&
      last.end === piece.start &&
      JOINED_TAGS.has(piece.tag);
    if (joins && piece.tag === 'nr') {
      joins = !joined.has(last!) && last!.end - last!.start <= 2;
    }
    if (joins) {
      last!.end = piece.end;
      joined.add(last!);
    } else {
      spans.push({ ...piece });
    }
  }
  return mapTags(spans, labels);
}

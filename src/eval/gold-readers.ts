import { readCluener } from './cluener-reader.js';
import {
  lineError,
  mapTags,
  readLines,
  type Line,
  type TaggedSpan,
} from './gold-lines.js';
import { DEFAULT_TAG_LABELS } from './label-map.js';
import { readPku } from './pku-reader.js';

/** A labelled span of a gold sentence, in code points, end exclusive. */
export interface GoldSpan {
  start: number;
  end: number;
  label: string;
}

/** One sentence of a gold file with its spans, tags already mapped. */
export interface GoldSentence {
  text: string;
  spans: GoldSpan[];
  /** 1-based line of the file where the sentence starts. */
  line: number;
}

/** Gold file formats that {@link readGold} reads. */
export const GOLD_FORMATS = ['bio', 'bmes', 'cluener', 'pku'] as const;

/** One of {@link GOLD_FORMATS}. */
export type GoldFormat = (typeof GOLD_FORMATS)[number];

/** How to read a gold file. */
export interface GoldReaderOptions {
  /**
   * Corpus tag → schema label. Spans whose tag is missing are dropped.
   * @defaultValue DEFAULT_TAG_LABELS
   */
  labels?: ReadonlyMap<string, string>;
  /**
   * Byte encoding of the file, as iconv-lite names it.
   * @defaultValue 'gbk' for pku, else 'utf-8'
   */
  encoding?: string;
  /** Maximum number of sentences to read; unset reads the whole file. */
  limit?: number;
}

/** Encoding of a format's files when `--encoding` is not given. */
export function defaultEncoding(format: GoldFormat): string {
  return format === 'pku' ? 'gbk' : 'utf-8';
}

/**
 * Streams the sentences of a gold file with spans in code points, end
 * exclusive, and labels mapped from the corpus tags.
 *
 * - `bio`: one `char<TAB or SPACE>tag` per line, a blank line between
 *   sentences, tags O, B-X and I-X (MSRA, Weibo).
 * - `bmes`: the same with tags O, B-X, M-X, E-X and S-X (Resume).
 * - `cluener`: JSON lines `{"text", "label": {type: {surface: [[start,
 *   end]]}}}` with 0-based positions and the end inclusive.
 * - `pku`: People's Daily 1998, one paragraph per line: the paragraph id,
 *   then `word/POS` tokens. A repeated line is read once.
 *
 * @throws InputError naming the file and line of the first line that
 *   cannot be parsed, or when the file cannot be read
 * @example
 * for await (const s of readGold('dev.char.bmes', 'bmes')) console.log(s);
 */
export async function* readGold(
  file: string,
  format: GoldFormat,
  options: GoldReaderOptions = {},
): AsyncGenerator<GoldSentence> {
  const labels = options.labels ?? new Map(Object.entries(DEFAULT_TAG_LABELS));
  const lines =
    options.encoding === undefined
      ? readLines(file, defaultEncoding(format), format)
      : readLines(file, options.encoding);
  const sentences =
    format === 'cluener'
      ? readCluener(file, lines, labels)
      : format === 'pku'
        ? readPku(file, lines, labels)
        : readTagged(file, lines, format, labels);

  const limit = options.limit ?? Number.POSITIVE_INFINITY;
  if (limit <= 0) return;
  let count = 0;
  for await (const sentence of sentences) {
    yield sentence;
    // Returning here closes the file without reading the rest of it.
    if (++count >= limit) return;
  }
}

/** Chinese characters; two in one token mark a word-level file. */
const HAN = /\p{Script=Han}/gu;

const TAG_PATTERNS = { bio: /^(?:O|[BI]-\S+)$/, bmes: /^(?:O|[BMES]-\S+)$/ };

const TAG_HINTS = {
  bio:
    'expected O, B-TYPE or I-TYPE ' +
    '(for M-, E- and S- tags use --format bmes)',
  bmes:
    'expected O, B-TYPE, M-TYPE, E-TYPE or S-TYPE ' +
    '(for I- tags use --format bio)',
};

async function* readTagged(
  file: string,
  lines: AsyncIterable<Line>,
  format: 'bio' | 'bmes',
  labels: ReadonlyMap<string, string>,
): AsyncGenerator<GoldSentence> {
  let chars: string[] = [];
  let tags: string[] = [];
  let first = 0;
  const sentence = (): GoldSentence => ({
    text: chars.join(''),
    spans: mapTags(spansFromTags(tags), labels),
    line: first,
  });

  for await (const line of lines) {
    const text = line.text.trimEnd();
    if (text.trim() === '') {
      if (tags.length > 0) yield sentence();
      chars = [];
      tags = [];
      continue;
    }
    if (tags.length === 0) first = line.number;
    const cut = Math.max(text.lastIndexOf('\t'), text.lastIndexOf(' '));
    const tag = text.slice(cut + 1);
    if (!TAG_PATTERNS[format].test(tag)) {
      throw lineError(file, line.number, tagProblem(text, cut, tag, format));
    }
    const token = text.slice(0, Math.max(cut, 0));
    if ((token.match(HAN) ?? []).length > 1) {
      throw lineError(
        file,
        line.number,
        `word "${token}" where one character is expected: ${format} files ` +
          `have one character and its tag per line, so split each word into ` +
          `characters (B-TYPE on the first, ${format === 'bio' ? 'I' : 'M- and E'}-TYPE on the rest)`,
      );
    }
    chars.push(characterOf(token, format));
    tags.push(tag);
  }
  if (tags.length > 0) yield sentence();
}

function tagProblem(
  text: string,
  cut: number,
  tag: string,
  format: 'bio' | 'bmes',
): string {
  if (cut < 0) {
    return `expected "character<TAB>tag" or "character tag", got "${text}"`;
  }
  return `invalid ${format.toUpperCase()} tag "${tag}"; ${TAG_HINTS[format]}`;
}

/**
 * Returns the character of a token. training/corpora.py reads tokens the
 * same way, so texts and offsets agree with training.
 */
function characterOf(token: string, format: 'bio' | 'bmes'): string {
  const points = [...token];
  // Weibo appends the character's position in its word: 科0, and e14 for
  // an "e" at position 14. Dropping one digit and then keeping the first
  // code point handles both.
  const last = points.at(-1) ?? '';
  if (format === 'bio' && points.length > 1 && /^[0-9]$/.test(last)) {
    points.pop();
  }
  // A line with only a tag lost its whitespace character to trimming, so
  // it is read as a space.
  if (points.length === 0) return ' ';
  // NOTE: a word-level file of Latin words ("Beijing B-LOC") is not
  // rejected, as Weibo has tokens such as e14. Each word is read as its
  // first character, so its offsets and scores are wrong.
  return points[0];
}

/**
 * Decodes BIO or BMES tags into spans of their raw type. An I-, M- or E-
 * tag whose type differs from the open span, or with no open span, starts
 * a new span, as training/corpora.py does, because Weibo has I- tags
 * without a B- and Resume has invalid transitions.
 */
function spansFromTags(tags: string[]): TaggedSpan[] {
  const spans: TaggedSpan[] = [];
  let start = 0;
  let open: string | undefined;
  const close = (end: number) => {
    if (open !== undefined) spans.push({ start, end, tag: open });
    open = undefined;
  };

  tags.forEach((tag, i) => {
    const head = tag[0];
    const type = tag.slice(2);
    const continues = head === 'I' || head === 'M' || head === 'E';
    if (head === 'B' || head === 'S' || (continues && type !== open)) {
      close(i);
      start = i;
      open = type;
      if (head === 'S' || head === 'E') close(i + 1);
    } else if (head === 'E') {
      close(i + 1);
    } else if (head === 'O') {
      close(i);
    }
  });
  close(tags.length);
  return spans;
}

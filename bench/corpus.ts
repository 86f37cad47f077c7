import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

import { parse } from 'csv-parse/sync';
import iconv from 'iconv-lite';

import { countCodePoints } from '../src/tokenizer/tokenizer.js';
import { ROOT } from './options.js';

/** Shortest and longest sentence kept from the news corpus, in code points. */
const MIN_CHARS = 30;
const MAX_CHARS = 70;

/** Sentences of the benchmark and where they came from. */
export interface BenchCorpus {
  sentences: string[];
  /** File the sentences were read from. */
  source: string;
  /** True when the source had fewer distinct sentences than requested. */
  repeated: boolean;
  /** Mean sentence length, in code points. */
  meanChars: number;
}

/**
 * Loads count news sentences of 30–70 characters from People's Daily
 * (January 1998, in `corpora/pku1998_pos` beside the repository or under
 * UIE_CORPORA), or repeats the sentences of examples/corpus.csv when that
 * corpus is absent.
 */
export function loadCorpus(count: number): BenchCorpus {
  const corpora = process.env.UIE_CORPORA ?? resolve(ROOT, '../shared/corpora');
  const news = join(corpora, 'pku1998_pos/199801.txt');
  const source = existsSync(news) ? news : join(ROOT, 'examples/corpus.csv');
  const distinct = existsSync(news)
    ? newsSentences(news, count)
    : exampleSentences(source);
  if (distinct.length === 0)
    throw new RangeError(`no usable sentences in ${source}`);

  const sentences: string[] = [];
  for (let i = 0; sentences.length < count; i++)
    sentences.push(distinct[i % distinct.length]);
  const chars = sentences.reduce((sum, s) => sum + countCodePoints(s), 0);
  return {
    sentences,
    source,
    repeated: distinct.length < count,
    meanChars: chars / sentences.length,
  };
}

/**
 * Reads the POS-tagged corpus (GBK, one paragraph per line: an id token,
 * then `word/POS` tokens, with `[`…`]nt` around compound names) as plain
 * sentences.
 */
function newsSentences(path: string, count: number): string[] {
  const seen = new Set<string>();
  for (const line of iconv.decode(readFileSync(path), 'gbk').split('\n')) {
    const tokens = line.trim().split(/\s+/).slice(1);
    const text = tokens
      .map((t) =>
        t.replace(/^\[/, '').replace(/\/[A-Za-z]+(\][A-Za-z]+)?$/, ''),
      )
      .join('');
    for (const sentence of splitSentences(text)) {
      const chars = countCodePoints(sentence);
      if (chars >= MIN_CHARS && chars <= MAX_CHARS) seen.add(sentence);
      if (seen.size === count) return [...seen];
    }
  }
  return [...seen];
}

function exampleSentences(path: string): string[] {
  const rows = parse(readFileSync(path), { columns: true, bom: true }) as {
    text?: string;
  }[];
  return rows.flatMap((row) => splitSentences(row.text ?? ''));
}

/** Splits text after each 。！？, keeping the mark with its sentence. */
export function splitSentences(text: string): string[] {
  return (text.match(/[^。！？]+[。！？]*/g) ?? [])
    .map((s) => s.trim())
    .filter(Boolean);
}

/** Writes sentences as a CSV with columns id and text. */
export function writeCorpusCsv(path: string, sentences: string[]): void {
  const rows = sentences.map((s, i) => `s${i + 1},${csvField(s)}`);
  writeFileSync(path, ['id,text', ...rows].join('\n') + '\n');
}

function csvField(value: string): string {
  return /[",\r\n]/.test(value) ? `"${value.replace(/"/g, '""')}"` : value;
}

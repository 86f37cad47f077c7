import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { planChunks } from '../src/chunking/plan.js';
import { configuredChunkLength } from '../src/cli/queue-session.js';
import { loadSettings } from '../src/config/config.js';
import { IdSet } from '../src/pipeline/id-set.js';
import { countCodePoints } from '../src/tokenizer/tokenizer.js';
import { csvField, readJsonl, runCli, tempDir } from './helpers.js';

interface Line {
  id: string;
  entities: {
    label: string;
    text: string;
    start: number;
    end: number;
    score: number;
    source: string;
  }[];
  error?: string;
}

const PEOPLE = ['张伟', '李娜', '王芳', '刘洋', '陈静', '𠮷田', '赵磊'];
const PLACES = ['北京市', '上海市', '杭州市', '成都市', '𠀀山县', '深圳市'];
const ORGS = ['复旦大学', '中国科学院', '人民医院', '华为公司', '𪚥研究所'];
const TIMES = ['2019年3月5日', '昨天', '去年冬天', '上午九点'];
const EMOJI = ['😀', '🎉', '👍', ''];

/** Returns clause n: a short phrase with entities and no sentence end. */
function clause(n: number): string {
  const pick = (list: string[], salt: number) =>
    list[(n * salt + Math.floor(n / 3)) % list.length];
  switch (n % 3) {
    case 0:
      return `${pick(PEOPLE, 1)}在${pick(PLACES, 3)}工作${pick(EMOJI, 5)}`;
    case 1:
      return `${pick(TIMES, 1)}${pick(PEOPLE, 5)}去了${pick(ORGS, 3)}`;
    default:
      return `${pick(PEOPLE, 3)}和${pick(PEOPLE, 2)}在${pick(PLACES, 1)}见面${pick(EMOJI, 7)}`;
  }
}

/** Returns sentence u: clauses joined by commas, at least minLength long. */
function sentence(u: number, minLength: number): string {
  let text = '';
  for (let k = 0; countCodePoints(text) < minLength; k++) {
    text += clause(u * 11 + k) + '，';
  }
  return text.slice(0, -1) + '。';
}

describe('when one document of 300 KB is extracted', () => {
  // With every sentence longer than half a chunk, no two sentences share a
  // chunk, so each sentence is one chunk and the model reads exactly the
  // same text as when the sentence is a document of its own. The last
  // sentence is longer than a chunk and is cut into overlapping windows.
  // Windows are placed from the sentence's start and each owns a fixed part
  // of the overlap, so the alone and in-document windows are the same too.
  // The document's entities must therefore be those of its sentences,
  // shifted by where each sentence starts, with none lost or doubled.
  const chunkLength = configuredChunkLength(loadSettings());
  const units = Array.from({ length: 11 }, (_, u) =>
    sentence(u, Math.floor(chunkLength / 2) + 1),
  );
  units.push(sentence(11, chunkLength + 150));
  const starts: { unit: number; start: number }[] = [];
  let text = '';
  let length = 0;
  for (let i = 0; Buffer.byteLength(text) < 300_000; i++) {
    const unit = i % units.length;
    starts.push({ unit, start: length });
    text += units[unit];
    length += countCodePoints(units[unit]);
  }
  const dir = tempDir('large-input');
  let document: Line;
  let alone: Line[];

  before(async () => {
    const docCsv = join(dir, 'document.csv');
    const unitsCsv = join(dir, 'sentences.csv');
    writeFileSync(docCsv, `id,text\ndoc,${csvField(text)}\n`);
    const rows = units.map((u, i) => `s${i},${csvField(u)}`);
    writeFileSync(unitsCsv, `id,text\n${rows.join('\n')}\n`);

    const docOut = join(dir, 'document.jsonl');
    const unitsOut = join(dir, 'sentences.jsonl');
    const args = ['--threads', '1'];
    const docRun = await runCli(['extract', docCsv, '-o', docOut, ...args]);
    assert.equal(docRun.code, 0, docRun.stderr);
    const sentenceRun = await runCli([
      'extract',
      unitsCsv,
      '-o',
      unitsOut,
      ...args,
    ]);
    assert.equal(sentenceRun.code, 0, sentenceRun.stderr);

    const lines = readJsonl<Line>(docOut);
    assert.equal(lines.length, 1, 'output lines');
    document = lines[0];
    alone = readJsonl<Line>(unitsOut);
    assert.equal(alone.length, units.length, 'sentence lines');
  });

  after(() => rmSync(dir, { recursive: true, force: true }));

  it('writes one line without error', () => {
    assert.equal(document.id, 'doc');
    assert.equal(document.error, undefined);
    assert.ok(document.entities.length > 1000, 'entities found');
  });

  it('keeps every offset on code points', () => {
    const chars = [...text];
    for (const e of document.entities) {
      const at = `${e.label} ${e.start}-${e.end}`;
      assert.equal(chars.slice(e.start, e.end).join(''), e.text, at);
    }
  });

  it('has offsets unlike UTF-16 ones', () => {
    // Guards the test itself: the text must shift offsets, or a UTF-16
    // offset bug would pass the check above.
    const utf16Start: number[] = [0];
    for (const c of text) utf16Start.push(utf16Start.at(-1)! + c.length);
    const shifted = document.entities.filter(
      (e) => utf16Start[e.start] !== e.start,
    );
    assert.ok(shifted.length > document.entities.length / 2);
  });

  it('splits into sentences and windows', () => {
    // Guards the premise above: each short sentence is one chunk, and each
    // copy of the long one is cut into the same overlapping windows.
    const overlap = loadSettings().chunkOverlap;
    const chunks = planChunks(text, chunkLength, overlap);
    const long = units.length - 1;
    const windows = planChunks(units[long], chunkLength, overlap).length;
    const longCopies = starts.filter((s) => s.unit === long).length;
    const short = new Set(units.slice(0, long));
    const shortChunks = chunks.filter((c) => short.has(c.text)).length;
    assert.ok(windows >= 2, `windows of the long sentence: ${windows}`);
    assert.equal(shortChunks, starts.length - longCopies);
    assert.equal(chunks.length, shortChunks + longCopies * windows);
  });

  it('equals its sentences extracted alone', () => {
    const expected = starts.flatMap(({ unit, start }) =>
      alone[unit].entities.map((e) => ({
        ...e,
        start: e.start + start,
        end: e.end + start,
      })),
    );
    const key = (e: Line['entities'][number]) =>
      `${e.label} ${e.text} ${e.start}-${e.end} ${e.source}`;
    assert.deepEqual(document.entities.map(key), expected.map(key));
  });

  it('scores spans as the sentences alone', () => {
    const scores = new Map<string, number>();
    for (const { unit, start } of starts) {
      for (const e of alone[unit].entities) {
        scores.set(`${e.label} ${e.start + start}`, e.score);
      }
    }
    for (const e of document.entities) {
      const score = scores.get(`${e.label} ${e.start}`);
      assert.ok(
        score !== undefined && Math.abs(score - e.score) < 1e-3,
        `${e.label} ${e.text} at ${e.start}: ${e.score} against ${score}`,
      );
    }
  });
});

describe('IdSet', () => {
  it('reports new and repeated ids', () => {
    const ids = new IdSet();
    const cases: [string, boolean][] = [
      ['n1', true],
      ['n12', true],
      ['n1', false],
      ['', true],
      ['', false],
      ['张伟', true],
      ['张伟 ', true],
      ['😀𠀀', true],
      ['😀𠀀', false],
      ['n12', false],
    ];
    for (const [id, added] of cases) {
      assert.equal(ids.add(id), added, JSON.stringify(id));
    }
    assert.equal(ids.size, 6);
  });

  it('agrees with Set while growing', () => {
    // 50,000 adds pass the initial 1,024 ids and 16 KiB of bytes many
    // times, so every table and the byte store are copied several times.
    const ids = new IdSet();
    const reference = new Set<string>();
    for (let i = 0; i < 50_000; i++) {
      const id =
        i % 5 === 0 ? `dup-${i % 977}` : `doc-${i}-${'字'.repeat(i % 9)}`;
      assert.equal(ids.add(id), !reference.has(id), id);
      reference.add(id);
    }
    assert.equal(ids.size, reference.size);
  });

  it('keeps the first line of each id', () => {
    // 5,000 ids pass the initial 1,024, so the line table is copied too.
    const ids = new IdSet();
    for (let i = 0; i < 5000; i++) ids.add(`doc-${i}`, i + 2);
    assert.equal(ids.add('doc-7', 9000), false);
    assert.equal(ids.firstLine('doc-7'), 9);
    assert.equal(ids.firstLine('doc-4999'), 5001);
    assert.equal(ids.firstLine('doc-5000'), undefined);
  });

  it('stores no line it cannot hold', () => {
    const ids = new IdSet();
    ids.add('a');
    ids.add('b', 2 ** 32);
    ids.add('c\uD800', 3);
    assert.equal(ids.firstLine('a'), undefined);
    assert.equal(ids.firstLine('b'), undefined);
    assert.equal(ids.firstLine('c\uD800'), 3);
    assert.equal(ids.firstLine('c\uD801'), undefined);
  });

  it('keeps unpaired surrogates apart', () => {
    // UTF-8 encodes both as U+FFFD, so a byte comparison would merge them.
    const ids = new IdSet();
    assert.equal(ids.add('a\uD800'), true);
    assert.equal(ids.add('a\uD801'), true);
    assert.equal(ids.add('a\uD800'), false);
    assert.equal(ids.add('a\uFFFD'), true);
    assert.equal(ids.size, 3);
  });
});

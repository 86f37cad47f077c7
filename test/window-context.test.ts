import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { chunkText, PLUGIN_CONTEXT } from '../src/chunking/chunker.js';
import { chunkTask, planChunks } from '../src/chunking/plan.js';
import { ExtractionPool } from '../src/engine/pool.js';
import { findTimes } from '../src/rules/time.js';
import {
  csvField,
  deletePrefix,
  readJsonl,
  ROOT,
  runCliOk,
  tempDir,
  uniquePrefix,
} from './helpers.js';

interface Line {
  id: string;
  entities: {
    label: string;
    text: string;
    start: number;
    end: number;
    value?: string;
  }[];
}

// Filler without a sentence end, so a long document is one sentence cut
// into windows.
const FILLER = '人民群众在这里工作学习生活，大家都很满意地说这样很好，';

/** Filler of `before` code points, the expression, then 300 more. */
function around(expression: string, before: number): string {
  const filler = (n: number) =>
    FILLER.repeat(Math.ceil(n / 26) + 1).slice(0, n);
  return filler(before) + expression + filler(300);
}

describe('window plugin context', () => {
  it('sets context on windows, clamped to the sentence', () => {
    const sentence = '甲'.repeat(100);
    const text = `乙乙。${sentence}。丙丙`;
    const windows = chunkText(text, 40, 10).filter(
      (c) => c.contextFrom !== undefined,
    );
    assert.ok(windows.length > 2);
    assert.equal(windows[0].contextFrom, 3);
    assert.equal(windows.at(-1)!.contextTo, 104);
    for (const w of windows) {
      assert.ok(w.contextFrom! >= Math.max(3, w.start - PLUGIN_CONTEXT));
      assert.ok(w.contextTo! <= Math.min(104, w.end + PLUGIN_CONTEXT));
    }
  });

  it('leaves packed sentences without context', () => {
    const chunks = chunkText('甲乙丙。'.repeat(30), 40, 10);
    assert.ok(chunks.length > 1);
    for (const c of chunks) assert.equal(c.contextFrom, undefined);
  });

  it('slices the context text around a window', () => {
    const text = '一二三四五六七八九十'.repeat(20);
    const [, second] = planChunks(text, 40, 10);
    const chars = [...text];
    assert.equal(
      second.context!.before,
      chars.slice(second.range.contextFrom, second.range.start).join(''),
    );
    assert.equal(
      second.context!.after,
      chars.slice(second.range.end, second.range.contextTo).join(''),
    );
    assert.equal(second.context!.before.length, 30);
  });
});

// Each expression slides across the first window's cut, one offset per
// document, so some documents cut it, some put it in the overlap and some
// need the text before the window for its value.
const EXPRESSIONS = [
  '21世纪20年代、30年代、40年代和50年代',
  '二〇二四年十二月三十一日晚上十一点五十九分',
  '1998年3月5日、6日、7日、8日、9日和10日',
  '1998年3月5日上午9点30分至下午5点45分',
];

/** Times as the plugin finds them in the whole text. */
function expected(text: string): string[] {
  const chars = [...text];
  return findTimes(text).map(
    (s) =>
      `${s.start}-${s.end} ${chars.slice(s.start, s.end).join('')} ${s.value ?? ''}`,
  );
}

function got(line: Line): string[] {
  return line.entities.map(
    (e) => `${e.start}-${e.end} ${e.text} ${e.value ?? ''}`,
  );
}

describe('times across a window cut', () => {
  const dir = tempDir('window-context');
  const csv = join(dir, 'long.csv');
  const prefix = uniquePrefix('window-context');
  // A small overlap leaves little text in a window before the part it
  // keeps, so the plugin context must supply the rest.
  const env = {
    UIE_PREFIX: prefix,
    UIE_OUTPUT_DIR: join(dir, 'results'),
    UIE_CHUNK_OVERLAP: '16',
  };
  const docs: { id: string; text: string }[] = [];

  before(() => {
    // The default schema leaves 251 characters of text per chunk, so the
    // first window ends at 251.
    EXPRESSIONS.forEach((expression, e) => {
      for (let at = 170; at <= 250; at += 4) {
        docs.push({ id: `e${e}-${at}`, text: around(expression, at) });
      }
    });
    const rows = docs.map((d) => `${d.id},${csvField(d.text)}`);
    writeFileSync(csv, ['id,text', ...rows].join('\n') + '\n');
  });

  after(() => deletePrefix(prefix));

  it('finds what the plugin finds in the whole text', async () => {
    const out = join(dir, 'extract.jsonl');
    await runCliOk(
      ['extract', csv, '-o', out, '--threads', '1', '--schema', '时间'],
      env,
    );
    const lines = readJsonl<Line>(out);
    assert.equal(lines.length, docs.length);
    lines.forEach((line, i) => {
      assert.deepEqual(got(line), expected(docs[i].text), line.id);
    });
  });

  it('gives the same lines through the queue', async () => {
    const run = 'window-context';
    await runCliOk(['enqueue', csv, '--run', run, '--schema', '时间'], env);
    await runCliOk(['work', '--threads', '1', '--exit-when-drained'], env);
    const out = join(dir, 'queue.jsonl');
    await runCliOk(['export', '--run', run, '-o', out], env);
    assert.deepEqual(
      readJsonl<Line>(out),
      readJsonl<Line>(join(dir, 'extract.jsonl')),
    );
  });
});

describe('when a plugin throws on a window context', () => {
  const dir = tempDir('window-context-throw');
  // Finds 工作 as 职业 and throws on a text that contains 炸.
  const plugin = join(dir, 'bomb.mjs');
  writeFileSync(
    plugin,
    [
      'export default {',
      "  name: 'bomb',",
      "  labels: ['职业'],",
      '  find(text) {',
      "    if (text.includes('炸')) throw new Error('cannot read 炸');",
      '    return [...text.matchAll(/工作/g)].map((m) => {',
      '      const start = [...text.slice(0, m.index)].length;',
      "      return { label: '职业', start, end: start + 2 };",
      '    });',
      '  },',
      '};',
    ].join('\n') + '\n',
  );
  // One sentence of 801 characters, without a sentence end, so it is cut
  // into windows.
  const sentence = '张三在北京工作，'.repeat(100);
  const text = sentence.slice(0, 400) + '炸' + sentence.slice(400);
  const chunks = planChunks(text, 200, 48);
  let pool: ExtractionPool;

  before(async () => {
    pool = new ExtractionPool(1, {
      modelDir: join(ROOT, 'models/tiny'),
      threshold: 0.5,
      batchTokens: 4096,
      plugins: [plugin],
      intraOpThreads: 1,
      memoryMb: 0,
    });
    await pool.provideLexicon(join(ROOT, 'models/tiny/lexicon.txt'));
    await pool.warmUp();
  });

  after(() => pool.close());

  it('fails only windows containing it', async () => {
    const marked = chunks.map((c) => c.text.includes('炸'));
    const nearby = chunks.map(
      (c, i) =>
        !marked[i] &&
        (c.context?.before.includes('炸') || c.context?.after.includes('炸')),
    );
    // The cases this test is for: windows that contain the marker, and
    // windows that read it only in their context.
    assert.ok(marked.includes(true), 'no window contains the marker');
    assert.ok(nearby.includes(true), 'no context contains the marker');

    const outcomes = await pool.run(chunkTask(chunks, ['职业']));

    assert.deepEqual(
      outcomes.map((o) => !Array.isArray(o)),
      marked,
    );
    for (const outcome of outcomes) {
      if (!Array.isArray(outcome)) {
        assert.match(outcome.error, /^Error: rule plugin "bomb" .* failed: /);
      }
    }
  });

  it('keeps the spans of the window alone', async () => {
    const outcomes = await pool.run(chunkTask(chunks, ['职业']));

    chunks.forEach((chunk, i) => {
      const outcome = outcomes[i];
      if (!Array.isArray(outcome)) return;
      const read = chunk.context
        ? chunk.context.before + chunk.text + chunk.context.after
        : chunk.text;
      const alone = read.includes('炸');
      // Offsets of 工作 that the window's read finds and keeps: those that
      // start in the window, and only whole ones in the window alone.
      const starts = [...chunk.text.matchAll(/工作/g)].map((m) => m.index);
      const kept = alone
        ? starts.filter((s) => s + 2 <= chunk.text.length)
        : starts;
      assert.deepEqual(
        outcome.map((e) => [e.start, e.text, e.source]),
        kept.map((s) => [s, '工作', 'bomb']),
        `window ${i}`,
      );
    });
  });
});

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';

import { chunkText, type ChunkRange } from '../src/chunking/chunker.js';
import { chunkLengthFor, planChunks } from '../src/chunking/plan.js';

/** Asserts that the keep regions cover [0, length) in order, once each. */
function assertTiles(chunks: ChunkRange[], from: number, to: number): void {
  let next = from;
  for (const chunk of chunks) {
    assert.equal(chunk.keepFrom, next, `keepFrom of ${JSON.stringify(chunk)}`);
    assert.ok(chunk.keepTo > chunk.keepFrom, `empty ${JSON.stringify(chunk)}`);
    next = chunk.keepTo;
  }
  assert.equal(next, to);
}

/** Start and end of each chunk. */
function bounds(text: string, maxLength: number): number[][] {
  return chunkText(text, maxLength, 0).map((c) => [c.start, c.end]);
}

/** End of each chunk. */
function ends(text: string, maxLength: number): number[] {
  return chunkText(text, maxLength, 0).map((c) => c.end);
}

/** Returns a range without its plugin context, for tests of the cuts alone. */
function withoutContext(range: ChunkRange): ChunkRange {
  const { contextFrom: _from, contextTo: _to, ...cut } = range;
  return cut;
}

/** Deterministic pseudo-random integers, so a failure can be replayed. */
function lcg(seed: number): (n: number) => number {
  let state = seed;
  return (n) => {
    state = (state * 1103515245 + 12345) % 2 ** 31;
    return state % n;
  };
}

describe('chunkText', () => {
  it('rejects maxLength below 8', () => {
    assert.throws(() => chunkText('甲', 7, 0), {
      name: 'RangeError',
      message: 'maxLength: expected >= 8, got 7',
    });
  });

  it('rejects overlap above half', () => {
    assert.throws(() => chunkText('甲', 10, 6), {
      name: 'RangeError',
      message: 'overlap: expected 0 to 5, got 6',
    });
  });

  it('rejects negative overlap', () => {
    assert.throws(() => chunkText('甲', 10, -1), { name: 'RangeError' });
  });

  it('returns no chunks for empty text', () => {
    assert.deepEqual(chunkText('', 8, 0), []);
  });

  it('keeps short text whole', () => {
    assert.deepEqual(chunkText('北京。上海', 8, 2), [
      { start: 0, end: 5, keepFrom: 0, keepTo: 5 },
    ]);
  });

  it('counts code points in short text', () => {
    // A surrogate pair is one code point, and so is a lone surrogate.
    assert.deepEqual(chunkText('😀。\ud800甲', 8, 2), [
      { start: 0, end: 4, keepFrom: 0, keepTo: 4 },
    ]);
  });

  it('keeps astral text whole', () => {
    // 11 UTF-16 units but 7 code points, so the text is one chunk.
    assert.deepEqual(chunkText('😀😀😀😀。甲乙', 8, 0), [
      { start: 0, end: 7, keepFrom: 0, keepTo: 7 },
    ]);
  });

  it('packs sentences greedily', () => {
    // Sentences of 4, 4, 5 and 3 code points.
    const text = '一二三。四五六。七八九十。甲乙。';
    assert.deepEqual(bounds(text, 8), [
      [0, 8],
      [8, 16],
    ]);
  });

  it('fills a chunk to exactly maxLength', () => {
    const text = '一二三。四五六。七';
    assert.deepEqual(bounds(text, 8), [
      [0, 8],
      [8, 9],
    ]);
  });

  const lineEnds = ['\n', '\r', '\u2028', '\u2029', '\u0085'];
  for (const mark of ['。', '！', '？', '；', '!', '?', ...lineEnds]) {
    it(`splits at ${JSON.stringify(mark)}`, () => {
      const text = `甲乙丙丁${mark}戊己庚辛壬`;
      assert.deepEqual(ends(text, 8), [5, 10]);
    });
  }

  it('keeps CRLF together', () => {
    const text = '甲乙丙丁\r\n戊己庚辛壬';
    assert.deepEqual(ends(text, 8), [6, 11]);
  });

  it('does not split at a comma', () => {
    const text = '甲乙丙丁，戊己庚辛壬';
    assert.deepEqual(ends(text, 8), [8, 10]);
  });

  for (const closer of ['”', '’', '」', '』', '）', ')', '"', "'", '》']) {
    it(`keeps ${closer} with its sentence`, () => {
      const text = `甲乙丙。${closer}戊己庚辛。`;
      assert.deepEqual(ends(text, 8), [5, 10]);
    });
  }

  it('keeps repeated marks together', () => {
    const text = '甲乙丙？！”戊己庚辛。';
    assert.deepEqual(ends(text, 8), [6, 11]);
  });

  it('cuts a long sentence into windows', () => {
    const text = '字'.repeat(30);
    assert.deepEqual(chunkText(text, 10, 4).map(withoutContext), [
      { start: 0, end: 10, keepFrom: 0, keepTo: 8 },
      { start: 6, end: 16, keepFrom: 8, keepTo: 14 },
      { start: 12, end: 22, keepFrom: 14, keepTo: 20 },
      { start: 18, end: 28, keepFrom: 20, keepTo: 26 },
      { start: 24, end: 30, keepFrom: 26, keepTo: 30 },
    ]);
  });

  it('cuts without overlap', () => {
    const text = '字'.repeat(9);
    assert.deepEqual(chunkText(text, 8, 0), [
      {
        start: 0,
        end: 8,
        keepFrom: 0,
        keepTo: 8,
        contextFrom: 0,
        contextTo: 9,
      },
      {
        start: 8,
        end: 9,
        keepFrom: 8,
        keepTo: 9,
        contextFrom: 0,
        contextTo: 9,
      },
    ]);
  });

  it('flushes packed text before windows', () => {
    const text = '甲乙。' + '字'.repeat(12) + '。丙丁。';
    const chunks = chunkText(text, 8, 2);
    assert.deepEqual(chunks[0], { start: 0, end: 3, keepFrom: 0, keepTo: 3 });
    assert.deepEqual(chunks.at(-1), {
      start: 16,
      end: 19,
      keepFrom: 16,
      keepTo: 19,
    });
    assertTiles(chunks, 0, 19);
  });

  it('keeps chunks within maxLength', () => {
    const alphabet = ['甲', '乙', '。', '！', '”', '\n', '😀', '？', ' '];
    const next = lcg(7);
    for (let round = 0; round < 200; round++) {
      const length = next(120);
      const text = Array.from({ length }, () => alphabet[next(9)]).join('');
      const maxLength = 8 + next(20);
      const overlap = next(Math.floor(maxLength / 2) + 1);
      const chunks = chunkText(text, maxLength, overlap);
      for (const chunk of chunks) {
        assert.ok(chunk.end - chunk.start <= maxLength, JSON.stringify(text));
      }
    }
  });

  it('tiles random text with keep regions', () => {
    const alphabet = ['甲', '乙', '。', '！', '”', '\n', '😀', '？', ' '];
    const next = lcg(11);
    for (let round = 0; round < 200; round++) {
      const length = next(120);
      const text = Array.from({ length }, () => alphabet[next(9)]).join('');
      const maxLength = 8 + next(20);
      const overlap = next(Math.floor(maxLength / 2) + 1);
      assertTiles(chunkText(text, maxLength, overlap), 0, length);
    }
  });

  it('keeps each window inside its range', () => {
    const chunks = chunkText('字'.repeat(50), 12, 5);
    for (const chunk of chunks) {
      assert.ok(chunk.start <= chunk.keepFrom, JSON.stringify(chunk));
      assert.ok(chunk.keepTo <= chunk.end, JSON.stringify(chunk));
    }
  });
});

describe('when a sentence is cut into windows', () => {
  it('tiles the sentence exactly once', () => {
    for (let maxLength = 8; maxLength <= 16; maxLength++) {
      for (let overlap = 0; overlap * 2 <= maxLength; overlap++) {
        for (let length = maxLength + 1; length <= 3 * maxLength; length++) {
          const chunks = chunkText('字'.repeat(length), maxLength, overlap);
          assertTiles(chunks, 0, length);
        }
      }
    }
  });

  it('gives every short entity one owner', () => {
    for (let maxLength = 8; maxLength <= 16; maxLength++) {
      for (let overlap = 2; overlap * 2 <= maxLength; overlap++) {
        for (let length = maxLength + 1; length <= 3 * maxLength; length++) {
          const chunks = chunkText('字'.repeat(length), maxLength, overlap);
          for (let size = 1; size <= overlap / 2; size++) {
            for (let start = 0; start + size <= length; start++) {
              const where =
                `max ${maxLength} overlap ${overlap} ` +
                `length ${length} entity ${start}+${size}`;
              const owners = chunks.filter(
                (c) => c.keepFrom <= start && start < c.keepTo,
              );
              assert.equal(owners.length, 1, where);
              assert.ok(owners[0].start <= start, where);
              assert.ok(start + size <= owners[0].end, where);
            }
          }
        }
      }
    }
  });
});

describe('planChunks', () => {
  it('slices by code points after an emoji', () => {
    const text = '😀甲乙丙丁。😀戊己庚辛。';
    const texts = planChunks(text, 8, 0).map((c) => c.text);
    assert.deepEqual(texts, ['😀甲乙丙丁。', '😀戊己庚辛。']);
  });

  it('slices windows by code points', () => {
    const chars = Array.from({ length: 40 }, (_, i) => (i % 3 ? '字' : '😀'));
    const planned = planChunks(chars.join(''), 10, 4);
    for (const { range, text } of planned) {
      assert.equal(text, chars.slice(range.start, range.end).join(''));
    }
  });

  it('keeps a short text whole', () => {
    const text = '😀北京。上海';
    assert.deepEqual(planChunks(text, 8, 2), [
      { range: { start: 0, end: 6, keepFrom: 0, keepTo: 6 }, text },
    ]);
  });

  it('keeps the ranges of chunkText', () => {
    const text = '😀'.repeat(20);
    const ranges = planChunks(text, 8, 2).map((c) => c.range);
    assert.deepEqual(ranges, chunkText(text, 8, 2));
  });

  it('names the setting for overlap above half', () => {
    assert.throws(() => planChunks('字'.repeat(300), 251, 1000), {
      name: 'ConfigError',
      message:
        'chunkOverlap (UIE_CHUNK_OVERLAP): expected at most 125, half of the chunk length for this model and schema (251), got 1000',
    });
  });
});

describe('chunkLengthFor', () => {
  const schema = ['人物', '地点', '机构', '时间'];

  it('derives the length when unset', () => {
    assert.equal(chunkLengthFor(64, schema, 0), 59);
  });

  it('keeps a configured length that fits', () => {
    assert.equal(chunkLengthFor(64, schema, 40), 40);
  });

  it('accepts exactly the fitting length', () => {
    assert.equal(chunkLengthFor(64, schema, 59), 59);
  });

  it('rejects a configured length too large', () => {
    assert.throws(() => chunkLengthFor(64, schema, 60), {
      name: 'ConfigError',
      message:
        'chunkChars (UIE_CHUNK_CHARS): expected at most 59 for this model (max_seq_len 64) and schema, got 60',
    });
  });

  it('names chunkOverlap too large for any label', () => {
    assert.throws(() => chunkLengthFor(256, ['人物'], 0, 200), {
      name: 'ConfigError',
      message:
        'chunkOverlap (UIE_CHUNK_OVERLAP): expected at most 125, half of the 251 characters of text per chunk ' +
        'that this model (max_seq_len 256) and schema leave, got 200',
    });
  });

  it('uses the longest prompt', () => {
    assert.equal(chunkLengthFor(64, ['人物', '组织机构'], 0), 57);
  });

  it('counts prompts in code points', () => {
    assert.equal(chunkLengthFor(64, ['𠀀𠀁'], 0), 59);
  });

  it('names a label that leaves too little for the overlap', () => {
    const label = '人'.repeat(200);
    assert.throws(() => chunkLengthFor(256, ['人物', label], 0, 32), {
      name: 'ConfigError',
      message:
        `schema (UIE_SCHEMA): label "${'人'.repeat(20)}…" (200 characters) leaves 53 characters of text per chunk ` +
        'for this model (max_seq_len 256), less than twice chunkOverlap (32); shorten the label or lower chunkOverlap',
    });
    assert.equal(chunkLengthFor(256, ['人物', label], 0, 26), 53);
  });

  it('rejects a label too long for the model', () => {
    const label = '人'.repeat(600);
    assert.throws(() => chunkLengthFor(256, ['人物', label], 0), {
      name: 'ConfigError',
      message:
        `schema (UIE_SCHEMA): label "${'人'.repeat(20)}…" is 600 characters long, too long for this model: ` +
        'with max_seq_len 256, a label may have at most 245 characters, ' +
        'because each row also needs 3 special tokens and at least 8 characters of text. Shorten the label',
    });
  });

  it('needs 8 characters of text', () => {
    assert.throws(() => chunkLengthFor(64, ['人'.repeat(54)], 0), {
      name: 'ConfigError',
      message: /is 54 characters long, .* at most 53 characters/,
    });
    assert.equal(chunkLengthFor(64, ['人'.repeat(53)], 0), 8);
  });

  it('rejects a long label before chunkChars', () => {
    assert.throws(() => chunkLengthFor(64, ['人'.repeat(60)], 40), {
      name: 'ConfigError',
    });
  });
});

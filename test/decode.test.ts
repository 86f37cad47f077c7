import { describe, it } from 'node:test';
import assert from 'node:assert/strict';

import { decodeSpans } from '../src/spans/decode.js';

/** Decodes a whole row with no prefix, so positions are row indices. */
function decode(start: number[], end: number[], threshold = 0.5) {
  return decodeSpans(
    Float32Array.from(start),
    Float32Array.from(end),
    0,
    start.length,
    threshold,
  );
}

/** Start and end pairs of the decoded spans. */
function pairs(start: number[], end: number[], threshold = 0.5) {
  return decode(start, end, threshold).map((s) => [s.start, s.end]);
}

describe('decodeSpans', () => {
  it('returns no spans for low rows', () => {
    assert.deepEqual(decode([0.1, 0.2, 0.3], [0.3, 0.2, 0.1]), []);
  });

  it('pairs a start with a later end', () => {
    assert.deepEqual(pairs([0, 0.9, 0, 0], [0, 0, 0.9, 0]), [[1, 3]]);
  });

  it('makes a one-char span at one position', () => {
    assert.deepEqual(pairs([0, 0, 0.9], [0, 0, 0.9]), [[2, 3]]);
  });

  it('drops an end before any start', () => {
    assert.deepEqual(pairs([0, 0, 0.9, 0], [0.9, 0, 0, 0.9]), [[2, 4]]);
  });

  it('pairs an end with the nearest start', () => {
    assert.deepEqual(pairs([0.9, 0.9, 0, 0], [0, 0, 0, 0.9]), [[1, 4]]);
  });

  it('uses a start for its first end only', () => {
    assert.deepEqual(pairs([0.9, 0, 0, 0], [0, 0.9, 0, 0.9]), [[0, 2]]);
  });

  it('pairs a same-position start and end', () => {
    assert.deepEqual(pairs([0.9, 0.9, 0], [0, 0.9, 0.9]), [[1, 2]]);
  });

  it('keeps separate entities apart', () => {
    assert.deepEqual(pairs([0.9, 0, 0.9, 0, 0], [0, 0.9, 0, 0, 0.9]), [
      [0, 2],
      [2, 5],
    ]);
  });

  it('drops a start with no end', () => {
    assert.deepEqual(pairs([0, 0.9, 0], [0, 0, 0]), []);
  });
});

describe('when a probability equals the threshold', () => {
  it('does not count a start', () => {
    assert.deepEqual(pairs([0.5, 0], [0, 0.9], 0.5), []);
  });

  it('does not count an end', () => {
    assert.deepEqual(pairs([0.9, 0], [0, 0.5], 0.5), []);
  });

  it('counts values just above', () => {
    assert.deepEqual(pairs([0.51, 0], [0, 0.51], 0.5), [[0, 2]]);
  });
});

describe('span score', () => {
  it('is start times end', () => {
    const [span] = decode([0.8, 0, 0], [0, 0, 0.6]);
    assert.equal(span.score, Math.fround(0.8) * Math.fround(0.6));
  });

  it('uses the paired start', () => {
    const spans = decode([0.9, 0.7, 0], [0, 0, 0.6]);
    assert.equal(spans.length, 1);
    assert.equal(spans[0].score, Math.fround(0.7) * Math.fround(0.6));
  });
});

describe('when offset is set', () => {
  // The row is [CLS] p r [SEP] t0 t1 t2 [SEP], so the text starts at 4.
  const start = Float32Array.from([0.9, 0.9, 0, 0.9, 0, 0.8, 0, 0.9]);
  const end = Float32Array.from([0.9, 0, 0.9, 0, 0, 0, 0.7, 0.9]);

  it('returns text positions', () => {
    const spans = decodeSpans(start, end, 4, 3, 0.5);
    assert.deepEqual(
      spans.map((s) => [s.start, s.end]),
      [[1, 3]],
    );
  });

  it('scores from the row', () => {
    const [span] = decodeSpans(start, end, 4, 3, 0.5);
    assert.equal(span.score, Math.fround(0.8) * Math.fround(0.7));
  });

  it('ignores tokens past length', () => {
    assert.deepEqual(decodeSpans(start, end, 4, 2, 0.5), []);
  });
});

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';

import { snapSpanEdges } from '../src/spans/span-edges.js';

const chars = (text: string) => [...text];

describe('snapSpanEdges', () => {
  it('widens the end to the whole word', () => {
    const text = chars('华为Mate60发布了');
    assert.deepEqual(snapSpanEdges([{ start: 0, end: 5, score: 0.9 }], text), [
      { start: 0, end: 8, score: 0.9 },
    ]);
  });

  it('widens the start to the whole word', () => {
    const text = chars('他用iPhone拍照');
    assert.deepEqual(snapSpanEdges([{ start: 4, end: 8, score: 0.8 }], text), [
      { start: 2, end: 8, score: 0.8 },
    ]);
  });

  it('snaps full-width letters and digits', () => {
    const text = chars('型号ＡＢ１２上市');
    assert.deepEqual(snapSpanEdges([{ start: 2, end: 4, score: 0.7 }], text), [
      { start: 2, end: 6, score: 0.7 },
    ]);
  });

  it('keeps spans at word boundaries', () => {
    const text = chars('张三在IBM工作');
    const spans = [
      { start: 0, end: 2, score: 0.9 },
      { start: 3, end: 6, score: 0.8 },
    ];
    assert.deepEqual(snapSpanEdges(spans, text), spans);
  });

  it('merges equal spans, keeping the best score', () => {
    const text = chars('去了Google总部');
    const spans = [
      { start: 2, end: 5, score: 0.6 },
      { start: 3, end: 8, score: 0.9 },
    ];
    assert.deepEqual(snapSpanEdges(spans, text), [
      { start: 2, end: 8, score: 0.9 },
    ]);
  });

  it('trims whitespace from both ends', () => {
    const text = chars('\n张三\t在\u3000北京');
    assert.deepEqual(snapSpanEdges([{ start: 0, end: 4, score: 0.9 }], text), [
      { start: 1, end: 3, score: 0.9 },
    ]);
    assert.deepEqual(snapSpanEdges([{ start: 5, end: 8, score: 0.8 }], text), [
      { start: 6, end: 8, score: 0.8 },
    ]);
  });

  it('trims control characters from both ends', () => {
    const text = chars('\u0085李四\u0085在上海\u0001');
    assert.deepEqual(snapSpanEdges([{ start: 0, end: 4, score: 0.9 }], text), [
      { start: 1, end: 3, score: 0.9 },
    ]);
    assert.deepEqual(snapSpanEdges([{ start: 5, end: 8, score: 0.8 }], text), [
      { start: 5, end: 7, score: 0.8 },
    ]);
  });

  it('trims emoji and symbols from both ends', () => {
    const text = chars('😀张三😀在👍🏻北京‍');
    assert.deepEqual(snapSpanEdges([{ start: 0, end: 4, score: 0.9 }], text), [
      { start: 1, end: 3, score: 0.9 },
    ]);
    assert.deepEqual(snapSpanEdges([{ start: 5, end: 10, score: 0.8 }], text), [
      { start: 7, end: 9, score: 0.8 },
    ]);
  });

  it('keeps symbols inside a span', () => {
    const text = chars('张😀三');
    assert.deepEqual(snapSpanEdges([{ start: 0, end: 3, score: 0.9 }], text), [
      { start: 0, end: 3, score: 0.9 },
    ]);
  });

  it('drops spans of emoji or symbols only', () => {
    for (const text of ['😀😀😀', '🎉🎉', 'ⓐⓑⓒ', '❤️']) {
      const span = { start: 0, end: [...text].length, score: 0.99 };
      assert.deepEqual(snapSpanEdges([span], chars(text)), [], text);
    }
  });

  it('drops a span of whitespace only', () => {
    const text = chars('张三 \n在');
    assert.deepEqual(
      snapSpanEdges([{ start: 2, end: 4, score: 0.9 }], text),
      [],
    );
  });
});

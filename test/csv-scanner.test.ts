import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';

import { CsvScanner } from '../src/producer/csv-scanner.js';

/**
 * Streams content through a scanner in pieces of `pieceBytes` bytes, and
 * returns the scanner's line count and its bad quotes of the first 10
 * records as [record, field] pairs.
 */
async function scan(
  content: string,
  delimiter: string,
  pieceBytes: number,
): Promise<{ lines: number; badQuotes: [number, number][] }> {
  const bytes = Buffer.from(content);
  const pieces: Buffer[] = [];
  for (let at = 0; at < bytes.length; at += pieceBytes) {
    pieces.push(bytes.subarray(at, at + pieceBytes));
  }
  const scanner = new CsvScanner(delimiter);
  const received: Buffer[] = [];
  await pipeline(
    Readable.from(pieces),
    scanner.createStream(),
    new Writable({
      write(chunk: Buffer, _encoding, done) {
        received.push(chunk);
        done();
      },
    }),
  );
  assert.deepEqual(Buffer.concat(received), bytes);
  const badQuotes: [number, number][] = [];
  for (let record = 0; record < 10; record++) {
    const field = scanner.takeBadQuote(record);
    if (field >= 0) badQuotes.push([record, field]);
  }
  return { lines: scanner.lines, badQuotes };
}

describe('CsvScanner', () => {
  // Content, delimiter, bad quotes as [record, field], line count.
  const cases: [string, string, [number, number][], number][] = [
    ['id,text\n1,"甲"x\n2,乙\n', ',', [[1, 1]], 3],
    ['"id"x,text\n', ',', [[0, 0]], 1],
    ['1,"甲","乙"丙,"丁"x\r\n', ',', [[0, 2]], 1],
    ['1,"他说""好"""。\n', ',', [[0, 1]], 1],
    ['1,""x\n', ',', [[0, 1]], 1],
    ['1,"他说""好"""\n2,""\n3,""""\n', ',', [], 3],
    ['1,"甲,乙"\r2,"第一行\r\n第二行"\r\n', ',', [], 3],
    ['1,他说"好"\n2,a"b"c,""x\n', ',', [[1, 2]], 2],
    ['1,"甲"x', ',', [[0, 1]], 1],
    ['1,"甲"', ',', [], 1],
    ['1,"甲\n2,乙"x\n', ',', [[0, 1]], 2],
    ['1,"甲', ',', [], 1],
    ['a\r\n"b"x\r\n', ',', [[1, 0]], 2],
    ['\ufeff"id"x,text\n', ',', [[0, 0]], 1],
    ['\ufeff\n\n\n', ',', [], 3],
    ['1\t"甲,乙"\t"丙"\n2\t"丁"戊\n', '\t', [[1, 1]], 2],
    ['1，"甲"，"乙"丙\n', '，', [[0, 2]], 1],
    ['1，"甲"，乙\n"丙"\uff0c\n', '，', [], 2],
    ['1，"甲"\uff1b\n', '，', [[0, 1]], 1],
    ['\uff0c"甲"x\n', '，', [[0, 1]], 1],
    ['1𠀀"甲"𠀀"乙"x\n', '𠀀', [[0, 2]], 1],
    ['', ',', [], 0],
  ];
  for (const [content, delimiter, badQuotes, lines] of cases) {
    for (const pieceBytes of [1, 64]) {
      it(`scans ${JSON.stringify(content)} in ${pieceBytes}-byte pieces`, async () => {
        const result = await scan(content, delimiter, pieceBytes);
        assert.deepEqual(result.badQuotes, badQuotes);
        assert.equal(result.lines, lines);
      });
    }
  }

  it('drops bad quotes of skipped records', () => {
    const scanner = new CsvScanner(',');
    scanner.scan(Buffer.from('"a"x\n"b"x\n"c"x\n'));
    assert.equal(scanner.takeBadQuote(2), 0);
    assert.equal(scanner.takeBadQuote(0), -1);
  });
});

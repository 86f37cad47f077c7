import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';

import iconv from 'iconv-lite';

import {
  createDecodeStream,
  INVALID_BYTES,
} from '../src/producer/decode-stream.js';
import { readJsonl, runCliOk, tempDir } from './helpers.js';

// Bytes that the file stream of an input reads at a time.
const READ_CHUNK_BYTES = 65536;

/**
 * Returns a tab-separated CSV of 1,500 rows with emoji and CJK Extension B
 * characters, starting with a byte order mark. The first row is padded so
 * that a high surrogate ends the first 64 KiB of its UTF-16 bytes, and the
 * low surrogate of its pair starts the next 64 KiB.
 */
function straddlingCsv(): string {
  const lastUnit = READ_CHUNK_BYTES / 2 - 1;
  for (let pad = 0; pad < 16; pad++) {
    let csv = '\ufeffid\ttext\n';
    for (let i = 1; i <= 1500; i++) {
      const padding = i === 1 ? '甲'.repeat(pad) : '';
      csv += `${i}\t${padding}李四😀在上海𠀀工作🎉，张三在北京市。\n`;
    }
    const unit = csv.charCodeAt(lastUnit);
    if (unit >= 0xd800 && unit <= 0xdbff) return csv;
  }
  throw new Error('no padding puts a high surrogate at the chunk boundary');
}

/** Decodes bytes fed to the decode stream in chunks of chunkBytes. */
async function decodeInChunks(
  bytes: Buffer,
  encoding: string,
  chunkBytes: number,
): Promise<string> {
  const chunks: Buffer[] = [];
  for (let i = 0; i < bytes.length; i += chunkBytes) {
    chunks.push(bytes.subarray(i, i + chunkBytes));
  }
  const decoded = Readable.from(chunks).pipe(createDecodeStream(encoding));
  const parts: Buffer[] = [];
  for await (const part of decoded) parts.push(part as Buffer);
  return Buffer.concat(parts).toString('utf8');
}

/** UTF-16 bytes with the 16-bit code unit `unit` between two texts. */
function withUnit(
  before: string,
  unit: number,
  after: string,
  encoding: 'utf-16le' | 'utf-16be',
): Buffer {
  const bytes = Buffer.alloc(2);
  if (encoding === 'utf-16le') bytes.writeUInt16LE(unit);
  else bytes.writeUInt16BE(unit);
  return Buffer.concat([
    iconv.encode(before, encoding),
    bytes,
    iconv.encode(after, encoding),
  ]);
}

const CHUNK_SIZES = [1, 2, 3, READ_CHUNK_BYTES];
const UTF16_ENCODINGS = ['utf-16be', 'utf-16le'] as const;

describe('when UTF-16 is decoded in chunks', () => {
  const csv = straddlingCsv();

  for (const encoding of UTF16_ENCODINGS) {
    const bytes = iconv.encode(csv, encoding);

    for (const size of CHUNK_SIZES) {
      it(`keeps pairs of ${encoding} in chunks of ${size}`, async () => {
        const text = await decodeInChunks(bytes, encoding, size);
        assert.equal(text.includes(INVALID_BYTES), false);
        assert.equal(text, csv.slice(1));
      });

      it(`marks a lone surrogate of ${encoding} in chunks of ${size}`, async () => {
        for (const unit of [0xd83d, 0xdc00]) {
          const lone = withUnit('id,text\na,甲', unit, '乙\nb,丙\n', encoding);
          const text = await decodeInChunks(lone, encoding, size);
          assert.equal(text, `id,text\na,甲${INVALID_BYTES}乙\nb,丙\n`);
        }
      });
    }

    it(`marks a high surrogate that ends ${encoding}`, async () => {
      const bytes = withUnit('id,text\na,甲', 0xd83d, '', encoding);
      for (const size of CHUNK_SIZES) {
        const text = await decodeInChunks(bytes, encoding, size);
        assert.equal(
          text,
          `id,text\na,甲${INVALID_BYTES}`,
          `chunks of ${size}`,
        );
      }
    });

    it(`marks an odd last byte of ${encoding}`, async () => {
      const bytes = Buffer.concat([
        iconv.encode('id,text\na,甲', encoding),
        Buffer.from([0x4e]),
      ]);
      for (const size of CHUNK_SIZES) {
        const text = await decodeInChunks(bytes, encoding, size);
        assert.equal(
          text,
          `id,text\na,甲${INVALID_BYTES}`,
          `chunks of ${size}`,
        );
      }
    });
  }

  it('puts a high surrogate at the end of the first read', () => {
    const bytes = iconv.encode(csv, 'utf-16be');
    const unit = bytes.readUInt16BE(READ_CHUNK_BYTES - 2);
    assert.ok(unit >= 0xd800, unit.toString(16));
    assert.ok(unit <= 0xdbff, unit.toString(16));
  });
});

describe('when extract reads UTF-16BE', () => {
  it('keeps a row with a pair across reads', async () => {
    const dir = tempDir('utf16be');
    const input = join(dir, 'docs.tsv');
    const out = join(dir, 'out.jsonl');
    const csv = straddlingCsv();
    writeFileSync(input, iconv.encode(csv, 'utf-16be'));
    const result = await runCliOk([
      'extract',
      input,
      '-o',
      out,
      '--encoding',
      'utf-16be',
      '--delimiter',
      'tab',
      '--threads',
      '1',
    ]);
    assert.doesNotMatch(result.stderr, /row rejected/);
    const lines = readJsonl<{ id: string }>(out);
    assert.equal(lines.length, 1500);
    assert.deepEqual(
      lines.map((line) => line.id),
      Array.from({ length: 1500 }, (_, i) => String(i + 1)),
    );
    assert.equal(existsSync(join(dir, 'out.rejects.jsonl')), false);
  });
});

describe('when GB18030 characters straddle chunks', () => {
  // 😀 and 𠀀 take four bytes in GB18030, 中 two, and ASCII one.
  const text = 'id,text\n1,中😀文𠀀hello world\n2,hello again\n';
  const bytes = iconv.encode(text, 'gb18030');

  for (const size of [1, 2, 3, 5, 7]) {
    it(`decodes every character in chunks of ${size} bytes`, async () => {
      assert.equal(await decodeInChunks(bytes, 'gb18030', size), text);
    });
  }

  it('marks a four-byte character cut off at the end', async () => {
    const cut = bytes.subarray(0, bytes.indexOf(Buffer.from('hello')) - 2);
    const decoded = await decodeInChunks(cut, 'gb18030', 3);
    assert.ok(decoded.includes(INVALID_BYTES), JSON.stringify(decoded));
  });
});

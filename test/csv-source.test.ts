import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createWriteStream, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';

import iconv from 'iconv-lite';
import pino, { type Logger } from 'pino';

import { InputError } from '../src/errors/errors.js';
import {
  readCsvDocuments,
  type CsvSourceOptions,
  type SourceEvent,
} from '../src/producer/csv-source.js';

let dir = '';
let fileCount = 0;

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'uie-csv-'));
});

after(() => {
  rmSync(dir, { recursive: true, force: true });
});

/** Writes content to a new file in the temp folder and returns its path. */
function writeCsv(content: string | Buffer): string {
  const file = join(dir, `input-${++fileCount}.csv`);
  writeFileSync(file, content);
  return file;
}

async function collect(
  file: string,
  options?: CsvSourceOptions,
): Promise<SourceEvent[]> {
  const events: SourceEvent[] = [];
  for await (const event of readCsvDocuments(file, options)) events.push(event);
  return events;
}

/** Writes content to a file and reads it, skipping rejected rows. */
async function documents(
  content: string | Buffer,
  options?: CsvSourceOptions,
): Promise<{ id: string; text: string; line: number }[]> {
  const events = await collect(writeCsv(content), options);
  return events.flatMap((e) =>
    e.type === 'document'
      ? [{ id: e.document.id, text: e.document.text, line: e.document.line }]
      : [],
  );
}

/** Returns the rejects among events. */
function rejectsOf(events: SourceEvent[]) {
  return events.flatMap((e) => (e.type === 'reject' ? [e.reject] : []));
}

interface LogLine {
  level: number;
  msg: string;
  file?: string;
  idColumn?: string;
  columns?: string[];
}

/** Returns a logger and the parsed lines it writes. */
function capturingLogger(): { log: Logger; lines: LogLine[] } {
  const lines: LogLine[] = [];
  const log = pino(
    { level: 'debug' },
    { write: (line: string) => lines.push(JSON.parse(line) as LogLine) },
  );
  return { log, lines };
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

// Enough valid text that one bad row stays under the share of invalid
// characters at which the whole file is taken to be in another encoding.
const FILLER_ROWS = [...'0123456789']
  .map((digit) => `r${digit},北京大学的张三在上海工作了三年。\n`)
  .join('');

describe('readCsvDocuments', () => {
  it('reads rows in order', async () => {
    const events = await collect(writeCsv('id,text\na,甲\nb,乙\n'));
    assert.deepEqual(events, [
      {
        type: 'document',
        document: { id: 'a', text: '甲', line: 2, index: 0 },
      },
      {
        type: 'document',
        document: { id: 'b', text: '乙', line: 3, index: 1 },
      },
    ]);
  });

  it('reads a last row without newline', async () => {
    assert.deepEqual(await documents('id,text\na,甲'), [
      { id: 'a', text: '甲', line: 2 },
    ]);
  });

  it('drops a UTF-8 BOM from the header', async () => {
    const docs = await documents('\ufeffid,text\na,甲\n');
    assert.deepEqual(docs, [{ id: 'a', text: '甲', line: 2 }]);
  });

  it('reads CRLF line ends', async () => {
    const docs = await documents('id,text\r\na,甲\r\nb,乙\r\n');
    assert.deepEqual(docs, [
      { id: 'a', text: '甲', line: 2 },
      { id: 'b', text: '乙', line: 3 },
    ]);
  });

  it('reads mixed line ends', async () => {
    const docs = await documents('id,text\r\na,甲\r\nb,乙\nc,丙\rd,丁\r\n');
    assert.deepEqual(docs, [
      { id: 'a', text: '甲', line: 2 },
      { id: 'b', text: '乙', line: 3 },
      { id: 'c', text: '丙', line: 4 },
      { id: 'd', text: '丁', line: 5 },
    ]);
  });

  it('reads a quoted newline', async () => {
    const docs = await documents('id,text\na,"第一行\n第二行"\nb,乙\n');
    assert.deepEqual(docs, [
      { id: 'a', text: '第一行\n第二行', line: 2 },
      { id: 'b', text: '乙', line: 4 },
    ]);
  });

  it('reads a quoted comma and quote', async () => {
    const docs = await documents('id,text\na,"他说：""好,的"""\n');
    assert.deepEqual(docs, [{ id: 'a', text: '他说："好,的"', line: 2 }]);
  });

  it('counts lines after a blank line', async () => {
    const docs = await documents('id,text\na,甲\n\nb,乙\n');
    assert.deepEqual(docs, [
      { id: 'a', text: '甲', line: 2 },
      { id: 'b', text: '乙', line: 4 },
    ]);
  });

  it('reads a header-only file', async () => {
    assert.deepEqual(await collect(writeCsv('id,text\n')), []);
  });

  it('reads a multi-byte character across reads', async () => {
    // createReadStream reads 64 KiB at a time, and 中 starts one byte before
    // the end of the first read.
    const head = 'id,text\nlong,';
    const fill = 'a'.repeat(64 * 1024 - Buffer.byteLength(head) - 1);
    const docs = await documents(`${head}${fill}中文\nz,末\n`);
    assert.equal(docs[0].text, `${fill}中文`);
    assert.deepEqual(docs[1], { id: 'z', text: '末', line: 3 });
  });

  it('reports progress up to 1', async () => {
    const fractions: number[] = [];
    const file = writeCsv('id,text\na,甲\n');
    await collect(file, { onProgress: (f) => fractions.push(f) });
    assert.equal(fractions.at(-1), 1);
  });
});

describe('when a row is invalid', () => {
  it('rejects extra fields', async () => {
    const file = writeCsv('id,text\na,甲,多\nb,乙\n');
    const events = await collect(file);
    assert.deepEqual(events, [
      {
        type: 'reject',
        reject: {
          file,
          line: 2,
          id: 'a',
          reason: 'expected 2 fields as in the header, got 3',
        },
      },
      {
        type: 'document',
        document: { id: 'b', text: '乙', line: 3, index: 1 },
      },
    ]);
  });

  it('rejects missing fields', async () => {
    const file = writeCsv('id,text\na\nb,乙\n');
    const [reject, next] = await collect(file);
    assert.deepEqual(reject, {
      type: 'reject',
      reject: {
        file,
        line: 2,
        id: 'a',
        reason: 'expected 2 fields as in the header, got 1',
      },
    });
    assert.equal(next.type, 'document');
  });

  it('rejects a missing text', async () => {
    const file = writeCsv('id,text\na,\nb,  \n');
    const events = await collect(file);
    assert.deepEqual(
      events.map((e) => (e.type === 'reject' ? e.reject : e)),
      [
        { file, line: 2, id: 'a', reason: 'missing text in column "text"' },
        { file, line: 3, id: 'b', reason: 'missing text in column "text"' },
      ],
    );
  });

  it('rejects a missing id', async () => {
    const file = writeCsv('id,text\n ,甲\n');
    const [event] = await collect(file);
    assert.deepEqual(event, {
      type: 'reject',
      reject: { file, line: 2, reason: 'missing id in column "id"' },
    });
  });

  it('rejects a NUL byte', async () => {
    const file = writeCsv('id,text\na,前\u0000后\nb,乙\n');
    const [reject, next] = await collect(file);
    assert.deepEqual(reject, {
      type: 'reject',
      reject: { file, line: 2, id: 'a', reason: 'NUL byte in column "text"' },
    });
    assert.equal(next.type, 'document');
  });

  it('rejects invalid UTF-8 in the text', async () => {
    const file = writeCsv(
      Buffer.concat([
        Buffer.from(`id,text\n${FILLER_ROWS}x1,坏`),
        Buffer.from([0xff, 0xfe]),
        Buffer.from('了\nx2,好\n'),
      ]),
    );
    const events = await collect(file);
    assert.deepEqual(events.at(-2), {
      type: 'reject',
      reject: {
        file,
        line: 12,
        id: 'x1',
        reason: 'invalid bytes for the file encoding in column "text"',
      },
    });
    assert.deepEqual(events.at(-1), {
      type: 'document',
      document: { id: 'x2', text: '好', line: 13, index: 11 },
    });
  });

  it('rejects invalid UTF-8 in the id', async () => {
    const file = writeCsv(
      Buffer.concat([
        Buffer.from(`id,text\n${FILLER_ROWS}x`),
        Buffer.from([0xc3]),
        Buffer.from(',好\n'),
      ]),
    );
    const events = await collect(file);
    assert.deepEqual(events.at(-1), {
      type: 'reject',
      reject: {
        file,
        line: 12,
        reason: 'invalid bytes for the file encoding in column "id"',
      },
    });
  });

  it('rejects a NUL byte in the id', async () => {
    const file = writeCsv(
      'id,text\n1,张三在北京市工作。\n2\u0000,李四在上海市开了公司。\n3,王五搬到了深圳市。\n',
    );
    const events = await collect(file);
    assert.deepEqual(events[1], {
      type: 'reject',
      reject: { file, line: 3, reason: 'NUL byte in column "id"' },
    });
    assert.deepEqual(
      events.map((e) => (e.type === 'document' ? e.document.id : null)),
      ['1', null, '3'],
    );
  });

  it('names the id column as the header spells it', async () => {
    const file = writeCsv('ID,text\n\u0000,甲\n');
    const [event] = await collect(file);
    assert.deepEqual(event, {
      type: 'reject',
      reject: { file, line: 2, reason: 'NUL byte in column "ID"' },
    });
  });

  it('leaves a NUL id out of an unclosed-quote reject', async () => {
    const file = writeCsv('id,text\na,甲\nb\u0000,"乙\nc,丙\n');
    const rejects = rejectsOf(await collect(file));
    assert.equal(rejects.length, 1);
    assert.equal(rejects[0].id, undefined);
    assert.match(
      rejects[0].reason,
      /The id is unknown: the id column of the row is empty or has invalid bytes or a NUL byte$/,
    );
  });

  it('accepts a literal U+FFFD', async () => {
    const docs = await documents(`id,text\n${FILLER_ROWS}y1,替换\ufffd字符\n`);
    assert.deepEqual(docs.at(-1), {
      id: 'y1',
      text: '替换\ufffd字符',
      line: 12,
    });
  });

  it('accepts U+FFFD in a short file', async () => {
    const content =
      'id,text\na,乱码\ufffd\ufffd\ufffd已替换\n' +
      'b,北京大学的张三在上海工作。\n';
    const docs = await documents(content);
    assert.equal(docs.length, 2);
  });

  it('reports an unclosed quote', async () => {
    const file = writeCsv('id,text\na,"甲\nb,乙\n');
    const events = await collect(file);
    assert.equal(events.length, 1);
    assert.equal(events[0].type, 'reject');
    const { reject } = events[0] as Extract<SourceEvent, { type: 'reject' }>;
    assert.match(
      reject.reason,
      /^malformed CSV: a quote opened in this row is never closed/,
    );
    assert.equal(reject.line, 2);
  });

  it('names the id of a row with an unclosed quote', async () => {
    const file = writeCsv('id,text\na,甲\nb,"乙\nc,丙\n');
    const events = await collect(file);
    const rejects = events.flatMap((e) => (e.type === 'reject' ? [e] : []));
    assert.equal(rejects.length, 1);
    assert.deepEqual(Object.keys(rejects[0].reject), [
      'file',
      'line',
      'id',
      'reason',
    ]);
    assert.equal(rejects[0].reject.id, 'b');
    assert.equal(rejects[0].reject.line, 3);
  });

  it('numbers a row with an unclosed quote without id column', async () => {
    const file = writeCsv('text\n甲\n"乙\n丙\n');
    const events = await collect(file);
    const rejects = events.flatMap((e) => (e.type === 'reject' ? [e] : []));
    assert.equal(rejects.length, 1);
    assert.equal(rejects[0].reject.id, '2');
  });

  // A 101-line file whose row at line 5 opens a quote that is never closed.
  const hundredRows = (eol: string) =>
    ['id,text', ...Array.from({ length: 100 }, (_, i) => `r${i + 2},文本`)]
      .map((row, i) => (i === 4 ? row.replace(',', ',"') : row))
      .join(eol) + eol;
  const unclosedCases: [string, string, number, number][] = [
    ['LF', hundredRows('\n'), 5, 101],
    ['CRLF', hundredRows('\r\n'), 5, 101],
    ['CR', hundredRows('\r'), 5, 101],
    ['CRLF at line 2 of 3', 'id,text\r\n1,"甲\r\n2,乙\r\n', 2, 3],
    ['CRLF and no last line end', 'id,text\r\n1,"甲\r\n2,乙', 2, 3],
    ['mixed line ends', 'id,text\r\n1,"甲\n\r\n\r2,乙\r\n', 2, 5],
    [
      'CRLF after a quoted CRLF',
      'id,text\r\n1,"甲\r\n甲"\r\n2,"乙\r\n3,丙\r\n',
      4,
      5,
    ],
  ];
  for (const [name, content, line, lastLine] of unclosedCases) {
    it(`names the last line of an unclosed quote: ${name}`, async () => {
      const rejects = rejectsOf(await collect(writeCsv(content)));
      assert.equal(rejects.length, 1);
      assert.equal(rejects[0].line, line);
      assert.match(
        rejects[0].reason,
        new RegExp(`the rest of the file \\(to line ${lastLine}\\) was read`),
      );
    });
  }

  it('names the last line of a broken CRLF header', async () => {
    const file = writeCsv('"id,text\r\n1,甲\r\n2,乙\r\n');
    await assert.rejects(collect(file), {
      name: 'InputError',
      message: new RegExp(
        `^${escapeRegExp(file)}: no header row could be read, because line 1 is not valid CSV: .* \\(to line 3\\) was read as one field`,
      ),
    });
  });

  it('says why an unclosed quote before the id hides it', async () => {
    const file = writeCsv('text,id\n甲,a\n"乙,b\n丙,c\n');
    const events = await collect(file);
    const rejects = events.flatMap((e) => (e.type === 'reject' ? [e] : []));
    assert.equal(rejects.length, 1);
    assert.equal(rejects[0].reject.id, undefined);
    assert.match(
      rejects[0].reject.reason,
      /; fix the quote and run again\. The id is unknown: the row breaks in or before the id column \(column 2\)$/,
    );
  });
});

describe('when a quoted field is malformed', () => {
  const reason = (column: string) =>
    `malformed CSV: the quoted field in ${column} has text after its closing quote; ` +
    'enclose the whole field in quotes and double each quote inside it';

  it('rejects text after a closing quote', async () => {
    const file = writeCsv(
      'id,text\n1,"张三在北京市工作。"x\n2,李四在上海市开了公司。\n',
    );
    const events = await collect(file);
    assert.deepEqual(events, [
      {
        type: 'reject',
        reject: { file, line: 2, id: '1', reason: reason('column "text"') },
      },
      {
        type: 'document',
        document: {
          id: '2',
          text: '李四在上海市开了公司。',
          line: 3,
          index: 1,
        },
      },
    ]);
  });

  it('reads the field once it is quoted whole', async () => {
    const docs = await documents('id,text\n1,"""张三""x"\n');
    assert.deepEqual(docs, [{ id: '1', text: '"张三"x', line: 2 }]);
  });

  it('keeps quotes inside an unquoted field', async () => {
    const file = writeCsv('id,text\n1,他说"好"\n2,两个""引号\n3,引"号,中"\n');
    const events = await collect(file);
    assert.deepEqual(events.slice(0, 2), [
      {
        type: 'document',
        document: { id: '1', text: '他说"好"', line: 2, index: 0 },
      },
      {
        type: 'document',
        document: { id: '2', text: '两个""引号', line: 3, index: 1 },
      },
    ]);
    // The quote does not start a quoted field, so the comma splits it.
    assert.deepEqual(events[2], {
      type: 'reject',
      reject: {
        file,
        line: 4,
        id: '3',
        reason: 'expected 2 fields as in the header, got 3',
      },
    });
  });

  it('reads the rows after a malformed quote', async () => {
    const file = writeCsv(
      'id,text\r\n1,"甲"乙,丙\r\n2,"第一行\r\n第二行"\r\n3,"他说""好"""\r\n4,丁\r\n',
    );
    const events = await collect(file);
    assert.equal(events[0].type, 'reject');
    assert.deepEqual(events.slice(1), [
      {
        type: 'document',
        document: { id: '2', text: '第一行\r\n第二行', line: 3, index: 1 },
      },
      {
        type: 'document',
        document: { id: '3', text: '他说"好"', line: 5, index: 2 },
      },
      {
        type: 'document',
        document: { id: '4', text: '丁', line: 6, index: 3 },
      },
    ]);
  });

  it('rejects text after doubled quotes and a closing quote', async () => {
    const file = writeCsv('id,text\n1,"他说""好"""。\n');
    const rejects = rejectsOf(await collect(file));
    assert.deepEqual(rejects, [
      { file, line: 2, id: '1', reason: reason('column "text"') },
    ]);
  });

  it('leaves a malformed id out of the reject', async () => {
    const file = writeCsv('id,text\n"1"0,甲\n2,乙\n');
    const events = await collect(file);
    assert.deepEqual(events[0], {
      type: 'reject',
      reject: { file, line: 2, reason: reason('column "id"') },
    });
    assert.equal(events[1].type, 'document');
  });

  it('names a column past the header by number', async () => {
    const file = writeCsv('id,text\n1,甲,"多"余\n');
    const rejects = rejectsOf(await collect(file));
    assert.equal(rejects[0].reason, reason('column 3'));
  });

  it('finds the quote with another delimiter', async () => {
    const file = writeCsv('id\ttext\n1\t"甲"乙\n2\t"丙,丁"\n');
    const events = await collect(file, { delimiter: 'tab' });
    assert.equal(events[0].type, 'reject');
    assert.deepEqual(events[1], {
      type: 'document',
      document: { id: '2', text: '丙,丁', line: 3, index: 1 },
    });
  });

  it('stops on a malformed quote in the header', async () => {
    const file = writeCsv('id,"text"x\n1,甲\n');
    await assert.rejects(collect(file), {
      name: 'InputError',
      message:
        `${file}: no header row could be read, because line 1 is not valid CSV: ` +
        'the quoted name of column 2 has text after its closing quote; ' +
        'enclose the whole name in quotes and double each quote inside it',
    });
  });
});

describe('when an encoding is given', () => {
  const text = '北京大学的张三在𠀀上海工作了三年。';
  const content = `id,text\na,${text}\nb,乙\n`;

  it('reads gb18030', async () => {
    const docs = await documents(iconv.encode(content, 'gb18030'), {
      encoding: 'gb18030',
    });
    assert.deepEqual(docs, [
      { id: 'a', text, line: 2 },
      { id: 'b', text: '乙', line: 3 },
    ]);
  });

  it('reads UTF-16LE with BOM', async () => {
    const bytes = iconv.encode(content, 'utf-16le', { addBOM: true });
    assert.deepEqual(bytes.subarray(0, 2), Buffer.from([0xff, 0xfe]));
    const docs = await documents(bytes, { encoding: 'utf-16le' });
    assert.deepEqual(docs, [
      { id: 'a', text, line: 2 },
      { id: 'b', text: '乙', line: 3 },
    ]);
  });

  it('reads UTF-16BE with BOM', async () => {
    const bytes = iconv.encode(content, 'utf-16be', { addBOM: true });
    const docs = await documents(bytes, { encoding: 'utf-16be' });
    assert.deepEqual(docs[0], { id: 'a', text, line: 2 });
  });

  for (const [where, unit] of [
    ['high', 0xd800],
    ['low', 0xdc00],
  ] as const) {
    it(`rejects a lone ${where} surrogate in UTF-16LE`, async () => {
      const lone = Buffer.alloc(2);
      lone.writeUInt16LE(unit);
      const file = writeCsv(
        Buffer.concat([
          iconv.encode('id,text\na,甲', 'utf-16le'),
          lone,
          iconv.encode('乙\nb,丙\n', 'utf-16le'),
        ]),
      );
      const events = await collect(file, { encoding: 'utf-16le' });
      assert.deepEqual(events, [
        {
          type: 'reject',
          reject: {
            file,
            line: 2,
            id: 'a',
            reason: 'invalid bytes for the file encoding in column "text"',
          },
        },
        {
          type: 'document',
          document: { id: 'b', text: '丙', line: 3, index: 1 },
        },
      ]);
    });
  }

  it('keeps a surrogate pair in UTF-16LE', async () => {
    const docs = await documents(iconv.encode('id,text\na,𠀀\n', 'utf-16le'), {
      encoding: 'utf-16le',
    });
    assert.deepEqual(docs, [{ id: 'a', text: '𠀀', line: 2 }]);
  });

  it('reads UTF-16LE without BOM', async () => {
    const bytes = iconv.encode(content, 'utf-16le');
    assert.equal(bytes[0], 'i'.charCodeAt(0));
    const docs = await documents(bytes, { encoding: 'utf-16le' });
    assert.deepEqual(docs[0], { id: 'a', text, line: 2 });
  });

  // "id,text\n" is 16 bytes in UTF-16, with a NUL byte in each character.
  const utf16Cases: [string, string, string | undefined][] = [
    ['utf-16le', 'utf-16le', undefined],
    ['utf-16le', 'utf-16le', 'gb18030'],
    ['utf-16be', 'utf-16be', undefined],
    ['utf-16le', 'utf-16le', 'utf-16be'],
    ['utf-16be', 'utf-16be', 'utf-16le'],
  ];
  for (const [saved, expected, given] of utf16Cases) {
    it(`names ${saved} without BOM read as ${given ?? 'utf-8'}`, async () => {
      const file = writeCsv(iconv.encode(content, saved));
      const options = given ? { encoding: given } : {};
      await assert.rejects(collect(file, options), (err: unknown) => {
        assert.ok(err instanceof InputError);
        assert.equal(
          err.message,
          `${file} does not look like ${given ?? 'utf-8'}: 8 of the first 16 bytes are NUL bytes, ` +
            `as in ${expected.toUpperCase()} text without a byte order mark. Pass --encoding ${expected}`,
        );
        assert.equal(err.message.includes('\u0000'), false);
        return true;
      });
    });
  }

  it('rejects UTF-8 rows with NUL bytes one by one', async () => {
    const events = await collect(
      writeCsv('id,text\na,甲\u0000乙\u0000丙\u0000丁\u0000\nb,乙\n'),
    );
    assert.deepEqual(
      events.map((e) =>
        e.type === 'document' ? e.document.id : e.reject.reason,
      ),
      ['NUL byte in column "text"', 'b'],
    );
  });

  it('rejects an unknown encoding', async () => {
    const file = writeCsv('id,text\n');
    await assert.rejects(collect(file, { encoding: 'klingon' }), {
      name: 'InputError',
      message:
        '--encoding: unknown encoding "klingon"; try utf-8, gb18030, gbk or utf-16le',
    });
  });

  it('stops on GBK read as UTF-8', async () => {
    const gbk = `id,text\n${FILLER_ROWS}`;
    const file = writeCsv(iconv.encode(gbk, 'gbk'));
    const pattern = new RegExp(
      `^${escapeRegExp(file)} does not look like utf-8: \\d+ of the first ` +
        '\\d+ characters are invalid\\. Pass --encoding with the encoding ' +
        'the file was saved in \\(gb18030 for most Excel exports in China\\)$',
    );
    await assert.rejects(collect(file), (err: unknown) => {
      assert.ok(err instanceof InputError);
      assert.match(err.message, pattern);
      return true;
    });
  });
});

describe('when a byte order mark disagrees with the encoding', () => {
  const content = 'id,text\na,张三在北京。\n';
  const cases: [string, Buffer, string][] = [
    ['UTF-8', Buffer.from([0xef, 0xbb, 0xbf]), 'utf-8'],
    ['UTF-16LE', Buffer.from([0xff, 0xfe]), 'utf-16le'],
    ['UTF-16BE', Buffer.from([0xfe, 0xff]), 'utf-16be'],
  ];
  const readAs = ['utf-8', 'gb18030', 'gbk', 'latin1', 'utf-16le', 'utf-16be'];

  for (const [name, mark, saved] of cases) {
    const bytes = Buffer.concat([mark, iconv.encode(content, saved)]);
    const markHex = [...mark].map((b) => b.toString(16).toUpperCase());

    for (const encoding of readAs.filter((e) => e !== saved)) {
      it(`names ${name} with BOM read as ${encoding}`, async () => {
        const file = writeCsv(bytes);
        await assert.rejects(collect(file, { encoding }), {
          name: 'InputError',
          message:
            `${file} starts with the ${name} byte order mark ${markHex.join(' ')} but is read as ${encoding}. ` +
            `Pass --encoding ${saved}`,
        });
      });
    }

    it(`reads ${name} with BOM as ${saved}`, async () => {
      const docs = await documents(bytes, { encoding: saved });
      assert.deepEqual(docs, [{ id: 'a', text: '张三在北京。', line: 2 }]);
    });
  }

  it('names UTF-8 with BOM over 64 KiB read as gb18030', async () => {
    const file = writeCsv(`\ufeffid,text\n${FILLER_ROWS.repeat(300)}`);
    await assert.rejects(collect(file, { encoding: 'gb18030' }), {
      name: 'InputError',
      message:
        `${file} starts with the UTF-8 byte order mark EF BB BF but is read as gb18030. ` +
        'Pass --encoding utf-8',
    });
  });

  it('reads the UTF-32LE mark as UTF-16LE with U+0000', async () => {
    const bytes = Buffer.concat([
      Buffer.from([0xff, 0xfe]),
      iconv.encode(`\u0000${content}`, 'utf-16le'),
    ]);
    const file = writeCsv(bytes);
    const events = await collect(file, { encoding: 'utf-16le' });
    assert.deepEqual(events, [
      {
        type: 'document',
        document: { id: '1', text: '张三在北京。', line: 2, index: 0 },
      },
    ]);
  });
});

describe('when the input is not in the given gb18030', () => {
  it('names valid UTF-8 without BOM', async () => {
    const file = writeCsv(`id,text\n${FILLER_ROWS.repeat(300)}`);
    await assert.rejects(collect(file, { encoding: 'gb18030' }), (err) => {
      assert.ok(err instanceof InputError);
      assert.match(
        err.message,
        /^.* does not look like gb18030: \d+ of the first \d+ characters are invalid\. Its first \d+ bytes are valid UTF-8: pass --encoding utf-8$/,
      );
      return true;
    });
  });

  it('suggests no gb18030 for invalid bytes', async () => {
    const row = Buffer.from('1,\xff\xff\xff\xffabc\n', 'latin1');
    const file = writeCsv(
      Buffer.concat([Buffer.from('id,text\n'), ...Array(20).fill(row)]),
    );
    await assert.rejects(collect(file, { encoding: 'gb18030' }), {
      name: 'InputError',
      message:
        `${file} does not look like gb18030: 80 of the first 207 characters are invalid. ` +
        'Pass --encoding with the encoding the file was saved in',
    });
  });

  it('suggests no gb18030 for an invalid header', async () => {
    const file = writeCsv(Buffer.from('id,\xff\xff\n1,abc\n', 'latin1'));
    await assert.rejects(collect(file, { encoding: 'gb18030' }), {
      name: 'InputError',
      message:
        `${file}: no column "text" in the header; columns are id, \ufffd\ufffd. ` +
        'The header has invalid bytes or control characters when read as gb18030, so the encoding may be wrong: ' +
        'pass --encoding with the encoding the file was saved in',
    });
  });
});

describe('when the header is unusual', () => {
  it('rejects a missing text column', async () => {
    const file = writeCsv('id,body\na,甲\n');
    await assert.rejects(collect(file), {
      name: 'InputError',
      message: `${file}: no column "text" in the header; columns are id, body. Set --text-column`,
    });
  });

  it('reads a named text column', async () => {
    const docs = await documents('id,body\na,甲\n', { textColumn: 'body' });
    assert.deepEqual(docs, [{ id: 'a', text: '甲', line: 2 }]);
  });

  it('reads a named id column', async () => {
    const docs = await documents('key,text\nk1,甲\n', { idColumn: 'key' });
    assert.deepEqual(docs, [{ id: 'k1', text: '甲', line: 2 }]);
  });

  it('trims header names', async () => {
    const docs = await documents(' id , text \na,甲\n');
    assert.deepEqual(docs, [{ id: 'a', text: '甲', line: 2 }]);
  });

  it('numbers rows without an id column', async () => {
    const file = writeCsv('text\n甲\n \n乙\n');
    const events = await collect(file);
    assert.deepEqual(
      events.map((e) => (e.type === 'document' ? e.document.id : e.reject.id)),
      ['1', '2', '3'],
    );
  });

  it('warns when rows are numbered', async () => {
    const { log, lines } = capturingLogger();
    const file = writeCsv('key,text\n1001,甲\n1002,乙\n');
    const events = await collect(file, { log });
    assert.deepEqual(
      events.map((e) => e.type === 'document' && e.document.id),
      ['1', '2'],
    );
    assert.equal(lines.length, 1);
    assert.equal(lines[0].level, 40);
    assert.equal(
      lines[0].msg,
      "no id column in the header; each row's number is its id",
    );
    assert.equal(lines[0].file, file);
    assert.equal(lines[0].idColumn, 'id');
    assert.deepEqual(lines[0].columns, ['key', 'text']);
  });

  it('logs nothing when the header has an id column', async () => {
    const { log, lines } = capturingLogger();
    await collect(writeCsv('id,text\na,甲\n'), { log });
    assert.deepEqual(lines, []);
  });

  it('reads an id column named ID', async () => {
    const { log, lines } = capturingLogger();
    const file = writeCsv('ID,text\n1001,甲\n1002,乙\n');
    const events = await collect(file, { log });
    assert.deepEqual(
      events.map((e) => e.type === 'document' && e.document.id),
      ['1001', '1002'],
    );
    assert.deepEqual(lines, []);
  });

  it('reads columns that differ in case and spaces', async () => {
    const docs = await documents(' Key ,TEXT\nk1,甲\n', {
      idColumn: ' KEY',
      idColumnExplicit: true,
    });
    assert.deepEqual(docs, [{ id: 'k1', text: '甲', line: 2 }]);
  });

  it('prefers the exact name to one in another case', async () => {
    const docs = await documents('ID,id,text\nX,a,甲\n');
    assert.deepEqual(docs, [{ id: 'a', text: '甲', line: 2 }]);
  });

  it('rejects two names that match apart from case', async () => {
    const file = writeCsv('ID,Id,text\na,b,甲\n');
    await assert.rejects(collect(file), {
      name: 'InputError',
      message:
        `${file}: the header has no column "id", but 2 columns match it when case is ignored: ` +
        '"ID" (column 1), "Id" (column 2), so it is unclear which one to read. ' +
        'Set --id-column to the exact name of one of them',
    });
  });

  it('rejects two text names that match apart from case', async () => {
    const file = writeCsv('id,Text,TEXT\na,甲,乙\n');
    await assert.rejects(collect(file), {
      name: 'InputError',
      message:
        `${file}: the header has no column "text", but 2 columns match it when case is ignored: ` +
        '"Text" (column 2), "TEXT" (column 3), so it is unclear which one to read. ' +
        'Set --text-column to the exact name of one of them',
    });
  });

  it('requires an explicit id column', async () => {
    const file = writeCsv('key,text\na,甲\n');
    await assert.rejects(
      collect(file, { idColumn: 'id', idColumnExplicit: true }),
      {
        name: 'InputError',
        message: `${file}: no column "id" in the header; columns are key, text. Set --id-column`,
      },
    );
  });

  it('suggests --delimiter tab for a tab-separated header', async () => {
    const file = writeCsv('id\ttext\na\t甲\n');
    await assert.rejects(collect(file), {
      name: 'InputError',
      message:
        `${file}: no column "text" in the header; columns are "id\\ttext". ` +
        'The only column contains a tab, so the file is probably separated by it: pass --delimiter tab',
    });
  });

  it('suggests --delimiter for a semicolon-separated header', async () => {
    const file = writeCsv('id;text\na;甲\n');
    await assert.rejects(collect(file), {
      name: 'InputError',
      message:
        `${file}: no column "text" in the header; columns are id;text. ` +
        `The only column contains ";", so the file is probably separated by it: pass --delimiter ';'`,
    });
  });

  it('suggests a comma when another delimiter is set', async () => {
    const file = writeCsv('id,text\na,甲\n');
    await assert.rejects(collect(file, { delimiter: 'tab' }), {
      name: 'InputError',
      message:
        `${file}: no column "text" in the header; columns are id,text. ` +
        'The only column contains ",", so the file is probably separated by it: pass --delimiter ,',
    });
  });

  it('names UTF-8 read as latin1 in a missing column', async () => {
    const file = writeCsv('编号,正文\n1,甲\n');
    await assert.rejects(
      collect(file, { encoding: 'latin1', textColumn: '正文' }),
      {
        name: 'InputError',
        message:
          `${file}: no column "正文" in the header; columns are "ç¼\\u0096å\\u008f·", "æ­£æ\\u0096\\u0087". ` +
          'The header looks like UTF-8 text read as latin1: pass --encoding utf-8',
      },
    );
  });

  it('names GB18030 read as latin1 in a missing column', async () => {
    const file = writeCsv(iconv.encode('编号,正文\n1,甲\n', 'gb18030'));
    await assert.rejects(
      collect(file, { encoding: 'latin1', textColumn: '正文' }),
      (err) => {
        assert.ok(err instanceof InputError);
        assert.match(
          err.message,
          /The header looks like GB18030 \(GBK\) text read as latin1: pass --encoding gb18030$/,
        );
        return true;
      },
    );
  });

  it('names UTF-8 read as utf-16le in a missing column', async () => {
    const file = writeCsv(`id,text\n${'1,张三在北京工作。\n'.repeat(20)}`);
    await assert.rejects(collect(file, { encoding: 'utf-16le' }), (err) => {
      assert.ok(err instanceof InputError);
      assert.match(
        err.message,
        /; columns are .{40}…\. The header looks like UTF-8 text read as utf-16le: pass --encoding utf-8$/u,
      );
      return true;
    });
  });

  // Excel saves "Unicode text" as UTF-16LE with a byte order mark and tabs.
  const utf16Saves = (['utf-16le', 'utf-16be'] as const).flatMap((encoding) =>
    [true, false].map((bom) => ({ encoding, bom })),
  );
  for (const { encoding, bom } of utf16Saves) {
    const saved = `${encoding.toUpperCase()} ${bom ? 'with' : 'without'} BOM`;

    it(`suggests --delimiter tab for ${saved}`, async () => {
      const bytes = iconv.encode('id\ttext\na\t甲\n', encoding, {
        addBOM: bom,
      });
      const file = writeCsv(bytes);
      await assert.rejects(collect(file, { encoding }), {
        name: 'InputError',
        message:
          `${file}: no column "text" in the header; columns are "id\\ttext". ` +
          'The only column contains a tab, so the file is probably separated by it: pass --delimiter tab',
      });
    });

    it(`suggests --text-column for ${saved}`, async () => {
      const bytes = iconv.encode('key,body\na,甲\n', encoding, {
        addBOM: bom,
      });
      const file = writeCsv(bytes);
      await assert.rejects(collect(file, { encoding }), {
        name: 'InputError',
        message: `${file}: no column "text" in the header; columns are key, body. Set --text-column`,
      });
    });

    it(`suggests --id-column for ${saved}`, async () => {
      const bytes = iconv.encode('key,text\na,甲\n', encoding, {
        addBOM: bom,
      });
      const file = writeCsv(bytes);
      const options = {
        encoding,
        idColumn: 'id',
        idColumnExplicit: true,
      };
      await assert.rejects(collect(file, options), {
        name: 'InputError',
        message: `${file}: no column "id" in the header; columns are key, text. Set --id-column`,
      });
    });
  }

  it('suggests --delimiter tab for a Chinese UTF-16LE header', async () => {
    // Each of 中 (U+4E2D) and 文 (U+6587) is two bytes of valid UTF-8 or
    // GB18030 in UTF-16LE, so only the byte order mark settles the encoding.
    const bytes = iconv.encode('中文\t正文\na\t甲\n', 'utf-16le', {
      addBOM: true,
    });
    const file = writeCsv(bytes);
    await assert.rejects(collect(file, { encoding: 'utf-16le' }), {
      name: 'InputError',
      message:
        `${file}: no column "text" in the header; columns are "中文\\t正文". ` +
        'The only column contains a tab, so the file is probably separated by it: pass --delimiter tab',
    });
  });

  it('names invalid bytes in a missing column', async () => {
    const file = writeCsv(
      Buffer.concat([
        Buffer.from('id,'),
        iconv.encode('正', 'gbk'),
        Buffer.from('\n1,abc\n'),
      ]),
    );
    await assert.rejects(collect(file), {
      name: 'InputError',
      message:
        `${file}: no column "text" in the header; columns are id, \ufffd\ufffd. ` +
        'The header has invalid bytes or control characters when read as utf-8, so the encoding may be wrong: ' +
        'pass --encoding with the encoding the file was saved in (gb18030 for most Excel exports in China)',
    });
  });

  it('rejects a duplicated id column', async () => {
    const file = writeCsv('id,id,text\na,b,甲\n');
    await assert.rejects(collect(file), {
      name: 'InputError',
      message:
        `${file}: the header has 2 columns named "id" (columns 1, 2), so it is unclear which one to read. ` +
        'Rename all but one of them, or set --id-column to another column',
    });
  });

  it('rejects a duplicated text column', async () => {
    const file = writeCsv('id,text,note, text\na,甲,x,乙\n');
    await assert.rejects(collect(file), {
      name: 'InputError',
      message:
        `${file}: the header has 2 columns named "text" (columns 2, 4), so it is unclear which one to read. ` +
        'Rename all but one of them, or set --text-column to another column',
    });
  });

  it('accepts duplicated columns it does not read', async () => {
    const docs = await documents('id,text,note,note,,\na,甲,x,y,,\n');
    assert.deepEqual(docs, [{ id: 'a', text: '甲', line: 2 }]);
  });

  it('rejects an empty file', async () => {
    const file = writeCsv('');
    await assert.rejects(collect(file), {
      name: 'InputError',
      message: `${file}: the file is empty; expected a header row`,
    });
  });

  it('names a broken header row', async () => {
    const file = writeCsv('id,"text\na,甲\nb,乙\n');
    await assert.rejects(collect(file), {
      name: 'InputError',
      message: new RegExp(
        `^${escapeRegExp(file)}: no header row could be read, because line 1 is not valid CSV: malformed CSV: a quote opened in this row is never closed`,
      ),
    });
  });
});

describe('when the file is missing', () => {
  it('throws InputError', async () => {
    const file = join(dir, 'no-such-file.csv');
    await assert.rejects(collect(file), (err: unknown) => {
      assert.ok(err instanceof InputError);
      assert.ok(
        err.message.startsWith(`cannot open input file ${file}: ENOENT`),
        err.message,
      );
      return true;
    });
  });
});

describe('when the input is a FIFO', () => {
  /** Makes a FIFO, writes content into it and returns its path. */
  function fifoWith(content: Buffer): string {
    const fifo = join(dir, `fifo-${++fileCount}`);
    execFileSync('mkfifo', [fifo]);
    // Opening a FIFO for writing waits until the reader opens it.
    createWriteStream(fifo).end(content);
    return fifo;
  }

  const rows = Array.from({ length: 5000 }, (_, i) => `r${i},第${i}行的文字`);
  const csv = Buffer.from(['id,text', ...rows].join('\n') + '\n');

  it('reads over 64 KiB once', async () => {
    assert.ok(csv.length > 64 * 1024);
    const progress: number[] = [];
    const events = await collect(fifoWith(csv), {
      onProgress: (f) => progress.push(f),
    });
    const ids = events.map((e) => e.type === 'document' && e.document.id);
    assert.deepEqual(
      ids,
      rows.map((_, i) => `r${i}`),
    );
    assert.deepEqual(progress, []);
  });

  it('waits for a writer that opens it later', async () => {
    const fifo = join(dir, `fifo-${++fileCount}`);
    execFileSync('mkfifo', [fifo]);
    const events = collect(fifo);
    // The reader is open by now, and must not take the missing writer for
    // the end of the input.
    await new Promise((r) => setTimeout(r, 300));
    createWriteStream(fifo).end(csv);
    assert.equal((await events).length, rows.length);
  });

  it('decompresses gzip found by magic bytes', async () => {
    const events = await collect(fifoWith(gzipSync(csv)));
    assert.equal(events.length, rows.length);
    assert.ok(events.every((e) => e.type === 'document'));
  });

  it('names the FIFO in gzip errors', async () => {
    const fifo = fifoWith(gzipSync(csv).subarray(0, 100));
    await assert.rejects(collect(fifo), (err: unknown) => {
      assert.ok(err instanceof InputError);
      assert.ok(
        err.message.startsWith(`${fifo} is not valid gzip data: `),
        err.message,
      );
      return true;
    });
  });
});

import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import {
  deletePrefix,
  logLines,
  readJsonl,
  runCli,
  tempDir,
  uniquePrefix,
} from './helpers.js';

/** Lines of a CLI's stderr that are not JSON log lines. */
function messages(stderr: string): string[] {
  return stderr.split('\n').filter((l) => l !== '' && !l.startsWith('{'));
}

describe('when every row of the input is rejected', () => {
  const dir = tempDir('rejected-rows');
  const prefix = uniquePrefix('rejected-rows');
  const env = { UIE_PREFIX: prefix, UIE_OUTPUT_DIR: join(dir, 'results') };
  const empty = join(dir, 'empty.csv');
  writeFileSync(empty, 'id,text\n1,\n2,   \n');
  const mixed = join(dir, 'mixed.csv');
  writeFileSync(mixed, 'id,text\n1,\n2,张三在北京。\n');

  after(() => deletePrefix(prefix));

  it('extract exits 1 and names the rejects file', async () => {
    const out = join(dir, 'empty.jsonl');
    writeFileSync(out, 'earlier results\n');
    const result = await runCli([
      'extract',
      empty,
      '-o',
      out,
      '--threads',
      '1',
    ]);

    assert.equal(result.code, 1, result.stderr);
    const rejects = join(dir, 'empty.rejects.jsonl');
    assert.deepEqual(messages(result.stderr), [
      `uie-batch: ${empty}: no row was accepted and 2 rows were rejected, so no document was extracted; ` +
        `${rejects} gives the reason for each rejected row. Fix the file or the CSV options and run the command again`,
    ]);
    assert.equal(readJsonl(rejects).length, 2);
    assert.equal(readFileSync(out, 'utf8'), 'earlier results\n');
  });

  it('extract names a single rejected row', async () => {
    const singleRow = join(dir, 'one.csv');
    writeFileSync(singleRow, 'id,text\n1,\n');
    const result = await runCli([
      'extract',
      singleRow,
      '-o',
      join(dir, 'one.jsonl'),
      '--threads',
      '1',
    ]);

    assert.equal(result.code, 1, result.stderr);
    assert.match(
      result.stderr,
      /one\.csv: no row was accepted and 1 row was rejected, so no document was extracted;/,
    );
  });

  it('extract names the last line of an unclosed CRLF quote', async () => {
    const unclosed = join(dir, 'unclosed.csv');
    writeFileSync(unclosed, 'id,text\r\n1,"张三在北京。\r\n2,李四在上海。\r\n');
    const result = await runCli([
      'extract',
      unclosed,
      '-o',
      join(dir, 'unclosed.jsonl'),
      '--threads',
      '1',
    ]);

    assert.equal(result.code, 1, result.stderr);
    const [reject] = logLines<{ line: number; reason: string }>(result.stderr);
    assert.equal(reject.line, 2);
    assert.match(reject.reason, /the rest of the file \(to line 3\) was read/);
    assert.match(
      result.stderr,
      /unclosed\.csv: no row was accepted and 1 row was rejected, so no document was extracted;/,
    );
  });

  it('extract exits 0 when some rows are accepted', async () => {
    const out = join(dir, 'mixed.jsonl');
    const result = await runCli([
      'extract',
      mixed,
      '-o',
      out,
      '--threads',
      '1',
    ]);

    assert.equal(result.code, 0, result.stderr);
    assert.equal(readJsonl(out).length, 1);
  });

  it('enqueue exits 1 and names the rejects file', async () => {
    const result = await runCli(['enqueue', empty, '--run', 'empty-1'], env);

    assert.equal(result.code, 1, result.stderr);
    const rejects = join(dir, 'results', 'empty-1', 'rejects.jsonl');
    assert.deepEqual(messages(result.stderr), [
      'run empty-1: 0 documents, 0 chunks in 0 jobs queued; 0 already queued, 2 rows rejected',
      `uie-batch: ${empty}: no row was accepted and 2 rows were rejected, so no document was queued; ` +
        `${rejects} gives the reason for each rejected row. Fix the file or the CSV options and run the command again`,
    ]);
    assert.equal(readJsonl(rejects).length, 2);
  });

  it('enqueue exits 1 when the rows were rejected before', async () => {
    const result = await runCli(['enqueue', empty, '--run', 'empty-1'], env);

    assert.equal(result.code, 1, result.stderr);
    assert.match(result.stderr, /0 rows rejected, 2 already rejected/);
    assert.match(result.stderr, /no row was accepted and 2 rows were rejected/);
  });

  it('enqueue exits 0 when some rows are accepted', async () => {
    const result = await runCli(['enqueue', mixed, '--run', 'mixed-1'], env);

    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stderr, /1 documents, .* 1 rows rejected/);
  });

  it('enqueue exits 0 when the file was queued before', async () => {
    const result = await runCli(['enqueue', mixed, '--run', 'mixed-1'], env);

    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stderr, /1 already queued/);
  });
});

describe('when rows of the input are malformed', () => {
  const dir = tempDir('malformed-rows');
  const prefix = uniquePrefix('malformed-rows');
  const env = { UIE_PREFIX: prefix, UIE_OUTPUT_DIR: join(dir, 'results') };
  const input = join(dir, 'malformed.csv');
  writeFileSync(
    input,
    'id,text\n' +
      '1,张三在北京市工作。\n' +
      '2\0,李四在上海市开了公司。\n' +
      '3,"王五搬到了深圳市。"x\n' +
      '4,他说"好"\n' +
      '5,赵六去了杭州市。\n',
  );
  const expectedRejects = [
    { line: 3, reason: 'NUL byte in column "id"' },
    {
      line: 4,
      id: '3',
      reason:
        'malformed CSV: the quoted field in column "text" has text after its closing quote; ' +
        'enclose the whole field in quotes and double each quote inside it',
    },
  ];

  after(() => deletePrefix(prefix));

  it('extract rejects them and keeps the others', async () => {
    const out = join(dir, 'malformed.jsonl');
    const result = await runCli([
      'extract',
      input,
      '-o',
      out,
      '--threads',
      '1',
    ]);

    assert.equal(result.code, 0, result.stderr);
    const ids = readJsonl<{ id: string }>(out).map((line) => line.id);
    assert.deepEqual(ids, ['1', '4', '5']);
    const rejects = readJsonl(join(dir, 'malformed.rejects.jsonl'));
    assert.deepEqual(rejects, [
      { file: input, ...expectedRejects[0] },
      { file: input, ...expectedRejects[1] },
    ]);
  });

  it('enqueue rejects the same rows', async () => {
    const result = await runCli(['enqueue', input, '--run', 'malformed'], env);

    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stderr, /: 3 documents, .* 2 rows rejected/);
    const rejects = readJsonl<{ file: string }>(
      join(dir, 'results', 'malformed', 'rejects.jsonl'),
    );
    assert.deepEqual(
      rejects.map(({ file, ...reject }) => reject),
      expectedRejects,
    );
  });
});

describe('when the header has no exact id column', () => {
  const dir = tempDir('id-column');
  const prefix = uniquePrefix('id-column');
  const env = { UIE_PREFIX: prefix, UIE_OUTPUT_DIR: join(dir, 'results') };

  after(() => deletePrefix(prefix));

  it('extract reads the ids of an ID column', async () => {
    const input = join(dir, 'upper.csv');
    writeFileSync(input, 'ID,text\n1001,张三在北京。\n1002,李四在上海。\n');
    const out = join(dir, 'upper.jsonl');
    const result = await runCli([
      'extract',
      input,
      '-o',
      out,
      '--threads',
      '1',
    ]);

    assert.equal(result.code, 0, result.stderr);
    const ids = readJsonl<{ id: string }>(out).map((line) => line.id);
    assert.deepEqual(ids, ['1001', '1002']);
    assert.deepEqual(logLines(result.stderr), []);
  });

  const numbered = join(dir, 'numbered.csv');
  writeFileSync(numbered, 'key,text\n1001,张三在北京。\n');
  const warning = {
    msg: "no id column in the header; each row's number is its id",
    file: numbered,
    idColumn: 'id',
    columns: ['key', 'text'],
  };
  type Warning = typeof warning & { level: number };
  const warningOf = (stderr: string) =>
    logLines<Warning>(stderr).map(({ msg, file, idColumn, columns }) => ({
      msg,
      file,
      idColumn,
      columns,
    }));

  it('extract warns that rows are numbered', async () => {
    const out = join(dir, 'numbered.jsonl');
    const result = await runCli([
      'extract',
      numbered,
      '-o',
      out,
      '--threads',
      '1',
    ]);

    assert.equal(result.code, 0, result.stderr);
    assert.deepEqual(warningOf(result.stderr), [warning]);
    assert.equal(readJsonl<{ id: string }>(out)[0].id, '1');
  });

  it('enqueue warns that rows are numbered', async () => {
    const result = await runCli(
      ['enqueue', numbered, '--run', 'numbered'],
      env,
    );

    assert.equal(result.code, 0, result.stderr);
    assert.deepEqual(warningOf(result.stderr), [warning]);
  });
});

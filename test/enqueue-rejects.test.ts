import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import {
  deletePrefix,
  readJsonl,
  runCli,
  runCliOk,
  runCliWithInput,
  tempDir,
  uniquePrefix,
} from './helpers.js';

/** Returns the summary line that enqueue prints on stderr. */
function summaryLine(stderr: string): string {
  return stderr.split('\n').find((l) => l.startsWith('run ')) ?? stderr;
}

describe('enqueue rejects a repeated id', () => {
  const dir = tempDir('enqueue-repeats');
  const prefix = uniquePrefix('enqueue-repeats');
  const env = { UIE_PREFIX: prefix, UIE_OUTPUT_DIR: join(dir, 'results') };
  // More rows than one Redis round trip reads, with repeats near the start
  // and at the end, each once with the same text and once with another.
  const rows = Array.from({ length: 620 }, (_, i) => [
    `d${i}`,
    `张${i}在北京。`,
  ]);
  rows.splice(5, 0, ['d1', '张1在北京。']);
  rows.splice(7, 0, ['d2', '完全不同的文本。']);
  rows.push(['d3', '张3在北京。'], ['d4', '另一个文本。']);
  const file = join(dir, 'repeats.csv');
  writeFileSync(file, ['id,text', ...rows.map((r) => r.join(','))].join('\n'));
  const rejects = join(dir, 'results', 'r', 'rejects.jsonl');

  after(() => deletePrefix(prefix));

  it('rejects every repeat on the first enqueue', async () => {
    const result = await runCliOk(['enqueue', file, '--run', 'r'], env);

    assert.match(
      summaryLine(result.stderr),
      /620 documents, .* 0 already queued, 4 rows rejected$/,
    );
    assert.deepEqual(
      readJsonl<{ line: number }>(rejects).map((r) => r.line),
      [7, 9, 624, 625],
    );
  });

  it('names the first line of an id read in an earlier batch', () => {
    const far = readJsonl<{ line: number; reason: string }>(rejects)[2];
    assert.match(far.reason, /^duplicate id; first seen at .*line 5/);
  });

  it('counts them as already rejected on the next enqueue', async () => {
    const result = await runCliOk(['enqueue', file, '--run', 'r'], env);

    assert.match(
      summaryLine(result.stderr),
      /0 documents, .* 620 already queued, 0 rows rejected, 4 already rejected$/,
    );
    assert.equal(readJsonl(rejects).length, 4);
  });
});

describe('enqueue tells rejected rows apart by content, not line', () => {
  const dir = tempDir('enqueue-reject-rows');
  const prefix = uniquePrefix('enqueue-reject-rows');
  const env = { UIE_PREFIX: prefix, UIE_OUTPUT_DIR: join(dir, 'results') };

  after(() => deletePrefix(prefix));

  it('records another bad row read from standard input at the same line', async () => {
    const first = await runCliWithInput(
      ['enqueue', '-', '--run', 'stdin'],
      'id,text\n1,张三在北京。\n2,\n',
      env,
    );
    assert.equal(first.code, 0, first.stderr);
    const second = await runCliWithInput(
      ['enqueue', '-', '--run', 'stdin'],
      'id,text\n3,李四在上海。\n4,甲\0乙\n',
      env,
    );

    assert.equal(second.code, 0, second.stderr);
    assert.match(
      summaryLine(second.stderr),
      /1 documents, .* 1 rows rejected$/,
    );
    const rejects = readJsonl<{ id: string; line: number }>(
      join(dir, 'results', 'stdin', 'rejects.jsonl'),
    );
    assert.deepEqual(
      rejects.map((r) => [r.id, r.line]),
      [
        ['2', 3],
        ['4', 3],
      ],
    );
  });

  it('records a new row without an id at another line', async () => {
    await runCliWithInput(
      ['enqueue', '-', '--run', 'no-id'],
      'id,text\nz1,一\n,没有编号的第一行\n',
      env,
    );
    const second = await runCliWithInput(
      ['enqueue', '-', '--run', 'no-id'],
      'id,text\nw1,一\nw2,二\n,没有编号的另一行\n',
      env,
    );

    assert.equal(second.code, 0, second.stderr);
    assert.match(summaryLine(second.stderr), /, 1 rows rejected$/);
  });

  it('counts a rejected row that moved down as already rejected', async () => {
    const file = join(dir, 'moved.csv');
    writeFileSync(file, 'id,text\n1,张三在北京。\n2,\n3,李四在上海。\n');
    await runCliOk(['enqueue', file, '--run', 'moved'], env);
    writeFileSync(
      file,
      'id,text\n0,王五在深圳。\n1,张三在北京。\n2,\n3,李四在上海。\n',
    );
    const result = await runCliOk(['enqueue', file, '--run', 'moved'], env);

    assert.match(
      summaryLine(result.stderr),
      /1 documents, .* 2 already queued, 0 rows rejected, 1 already rejected$/,
    );
    assert.equal(
      readJsonl(join(dir, 'results', 'moved', 'rejects.jsonl')).length,
      1,
    );
  });
});

describe('a run without documents', () => {
  const dir = tempDir('enqueue-no-rows');
  const prefix = uniquePrefix('enqueue-no-rows');
  const env = { UIE_PREFIX: prefix, UIE_OUTPUT_DIR: join(dir, 'results') };

  after(() => deletePrefix(prefix));

  it('exports an empty file when its file had a header and no rows', async () => {
    const file = join(dir, 'header.csv');
    writeFileSync(file, 'id,text\n');
    const out = join(dir, 'header.jsonl');
    await runCliOk(['enqueue', file, '--run', 'header'], env);
    const result = await runCli(['export', '--run', 'header', '-o', out], env);

    assert.equal(result.code, 0, result.stderr);
    assert.equal(readFileSync(out, 'utf8'), '');
  });

  it('names the rejects file when every row was rejected', async () => {
    const file = join(dir, 'bad.csv');
    writeFileSync(file, 'id,text\n1,\n');
    await runCli(['enqueue', file, '--run', 'bad'], env);
    const result = await runCli(
      ['export', '--run', 'bad', '-o', join(dir, 'bad.jsonl')],
      env,
    );

    assert.equal(result.code, 1);
    assert.match(
      result.stderr,
      /run bad has no documents: all 1 rows its enqueues read were rejected; .*bad\/rejects\.jsonl gives/,
    );
  });
});

import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

import {
  deletePrefix,
  readJsonl,
  runCliOk,
  tempDir,
  uniquePrefix,
} from './helpers.js';

describe('enqueue of a file whose row was edited', () => {
  const prefix = uniquePrefix('edited-rows');
  const dir = tempDir('edited-rows');
  const results = join(dir, 'results');
  const env = { UIE_PREFIX: prefix, UIE_OUTPUT_DIR: results };
  const csv = join(dir, 'news.csv');
  const run = 'edited';

  after(() => deletePrefix(prefix));

  it('rejects the edited row and keeps the others', async () => {
    writeFileSync(
      csv,
      'id,text\na,张三在北京。\nb,李四在上海。\nc,王五在深圳。\n',
    );
    await runCliOk(['enqueue', csv, '--run', run], env);
    writeFileSync(
      csv,
      'id,text\na,张三在北京。\nb,李四在广州。\nc,王五在深圳。\n',
    );

    const again = await runCliOk(['enqueue', csv, '--run', run], env);
    assert.match(
      again.stderr,
      /: 0 documents, 0 chunks in 0 jobs queued; 2 already queued, 1 rows rejected\n/,
    );
    const rejects = readJsonl(join(results, run, 'rejects.jsonl'));
    assert.equal(rejects.length, 1);
    assert.equal(rejects[0].line, 3);
    assert.equal(rejects[0].id, 'b');
    assert.match(
      String(rejects[0].reason),
      /^text differs from the text queued from this row before; to extract the new text, forget run edited/,
    );
  });

  it('counts the edited row as already rejected next time', async () => {
    const third = await runCliOk(['enqueue', csv, '--run', run], env);
    assert.match(
      third.stderr,
      /2 already queued, 0 rows rejected, 1 already rejected\n/,
    );
  });
});

describe('enqueue of a file with a row inserted', () => {
  const prefix = uniquePrefix('moved-rows');
  const dir = tempDir('moved-rows');
  const results = join(dir, 'results');
  const env = { UIE_PREFIX: prefix, UIE_OUTPUT_DIR: results };
  const csv = join(dir, 'news.csv');
  const run = 'moved';

  after(() => deletePrefix(prefix));

  it('queues the new row and counts moved rows as queued', async () => {
    writeFileSync(csv, 'id,text\na,张三在北京。\nb,李四在上海。\n');
    await runCliOk(['enqueue', csv, '--run', run], env);
    writeFileSync(
      csv,
      'id,text\nn,赵六在杭州。\na,张三在北京。\nb,李四在广州。\n',
    );

    const again = await runCliOk(['enqueue', csv, '--run', run], env);

    assert.match(
      again.stderr,
      /: 1 documents, 1 chunks in 1 jobs queued; 1 already queued, 1 rows rejected\n/,
    );
    const rejects = readJsonl(join(results, run, 'rejects.jsonl'));
    assert.equal(rejects.length, 1);
    assert.equal(rejects[0].id, 'b');
    assert.equal(rejects[0].line, 4);
    assert.match(
      String(rejects[0].reason),
      /^duplicate id; first seen at .*news\.csv line 3, with another text\. If this row is that row, edited and moved, forget run moved/,
    );
  });
});

describe('enqueue of a file with a row repeated', () => {
  const prefix = uniquePrefix('repeated-rows');
  const dir = tempDir('repeated-rows');
  const results = join(dir, 'results');
  const env = { UIE_PREFIX: prefix, UIE_OUTPUT_DIR: results };
  const csv = join(dir, 'news.csv');
  const run = 'repeated';

  after(() => deletePrefix(prefix));

  it('rejects the repeat again next time', async () => {
    writeFileSync(csv, 'id,text\na,张三在北京。\na,张三在北京。\n');
    const first = await runCliOk(['enqueue', csv, '--run', run], env);
    assert.match(first.stderr, /: 1 documents, .* 1 rows rejected\n/);

    const again = await runCliOk(['enqueue', csv, '--run', run], env);

    assert.match(
      again.stderr,
      /1 already queued, 0 rows rejected, 1 already rejected\n/,
    );
  });
});

import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import {
  deletePrefix,
  readJsonl,
  ROOT,
  runCli,
  tempDir,
  uniquePrefix,
} from './helpers.js';

interface Line {
  id: string;
  entities: unknown[];
  error?: string;
}

const CRASH_PLUGIN = join(ROOT, 'test/fixtures/crash-plugin.mjs');

describe('when a pool thread dies', () => {
  const prefix = uniquePrefix('thread-faults');
  const dir = tempDir('thread-faults');
  const crashDir = join(dir, 'crashed');
  mkdirSync(crashDir);
  const csv = join(dir, 'docs.csv');
  const rows = [
    'a,张三在北京市工作。',
    'b,【线程退出】李四在上海市开了公司。',
    'c,王五搬到了深圳市。',
    'd,【内存耗尽】苏轼被贬到黄州，写了很多诗。',
    'e,周杰伦在台北市开了演唱会。',
  ];
  writeFileSync(csv, ['id,text', ...rows].join('\n') + '\n');
  const env = {
    UIE_PREFIX: prefix,
    UIE_OUTPUT_DIR: join(dir, 'results'),
    UIE_CHUNKS_PER_JOB: '1',
    UIE_THREAD_MEMORY_MB: '64',
    UIE_TEST_CRASH_DIR: crashDir,
  };
  after(() => deletePrefix(prefix));

  it('retries the job on a new thread', async () => {
    const reference = join(dir, 'reference.jsonl');
    const extracted = await runCli(
      ['extract', csv, '-o', reference, '--threads', '1'],
      env,
    );
    assert.equal(extracted.code, 0, extracted.stderr);

    const enqueued = await runCli(['enqueue', csv, '--run', 'r1'], env);
    assert.equal(enqueued.code, 0, enqueued.stderr);
    const worker = await runCli(
      ['work', '--threads', '1', '--exit-when-drained'],
      { ...env, UIE_PLUGINS: `time,${CRASH_PLUGIN}` },
    );
    assert.equal(worker.code, 0, worker.stderr);
    assert.equal(readdirSync(crashDir).length, 2, 'both marked texts crashed');
    const failures = worker.stderr
      .split('\n')
      .filter((l) => l.includes('"job failed"'))
      .map((l) => JSON.parse(l) as { err: { message: string } });
    assert.equal(failures.length, 2, worker.stderr);
    assert.ok(
      failures.some((f) => /out of memory/i.test(f.err.message)),
      worker.stderr,
    );

    const out = join(dir, 'out.jsonl');
    const exported = await runCli(['export', '--run', 'r1', '-o', out], env);
    assert.equal(exported.code, 0, exported.stderr);
    const lines = readJsonl<Line>(out);
    assert.deepEqual(
      lines.map((l) => l.id),
      ['a', 'b', 'c', 'd', 'e'],
    );
    assert.ok(lines.every((l) => l.error === undefined));
    assert.deepEqual(lines, readJsonl<Line>(reference));
  });
});

describe('when threadMemoryMb is too small to load the model', () => {
  it('names the setting and exits 1', async () => {
    const dir = tempDir('thread-faults');
    const csv = join(dir, 'docs.csv');
    writeFileSync(csv, 'id,text\na,张三在北京市工作。\n');

    const result = await runCli(
      ['extract', csv, '-o', join(dir, 'out.jsonl'), '--threads', '2'],
      { UIE_THREAD_MEMORY_MB: '4' },
    );

    assert.equal(result.code, 1, result.stderr);
    assert.match(
      result.stderr,
      /uie-batch: a pool thread ran out of memory: threadMemoryMb \(UIE_THREAD_MEMORY_MB\) is 4 MiB/,
    );
    assert.doesNotMatch(result.stderr, /Unhandled 'error' event/);
  });
});

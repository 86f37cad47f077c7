import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { Redis } from 'ioredis';

import { RunStore } from '../src/queue/run-store.js';
import {
  deletePrefix,
  readJsonl,
  REDIS_URL,
  runCli,
  tempDir,
  uniquePrefix,
} from './helpers.js';

const DAY_SECONDS = 24 * 3600;
const QUEUE = 'uie-batch';
const RECORD_KEYS = ['docs', 'order', 'stats'];

/** Names of the runs `status --json` lists. */
async function listedRuns(env: Record<string, string>): Promise<string[]> {
  const result = await runCli(['status', '--json'], env);
  assert.equal(result.code, 0, result.stderr);
  const status = JSON.parse(result.stdout) as { runs: { run: string }[] };
  return status.runs.map((r) => r.run);
}

describe('run retention through the CLI', () => {
  const prefix = uniquePrefix('retention');
  const dir = tempDir('retention');
  const csv = join(dir, 'tiny.csv');
  const output = join(dir, 'out.jsonl');
  const env = {
    UIE_PREFIX: prefix,
    UIE_OUTPUT_DIR: join(dir, 'results'),
    UIE_RUN_RETENTION_DAYS: '2',
  };
  const redis = new Redis(REDIS_URL);
  const key = (run: string, name: string) =>
    `${prefix}:${QUEUE}:uie:run:${run}:${name}`;
  const ttls = (run: string) =>
    Promise.all(RECORD_KEYS.map((name) => redis.ttl(key(run, name))));

  before(() => {
    writeFileSync(
      csv,
      'id,text\n1,张伟在北京大学读书。\n2,李娜昨天去了上海。\n',
    );
  });

  after(async () => {
    redis.disconnect();
    await deletePrefix(prefix);
    rmSync(dir, { recursive: true, force: true });
  });

  it('keeps records of an unexported run', async () => {
    const queued = await runCli(['enqueue', csv, '--run', 'done-1'], env);
    assert.equal(queued.code, 0, queued.stderr);
    assert.deepEqual(await ttls('done-1'), [-1, -1, -1]);
  });

  it('expires records after export', async () => {
    const work = await runCli(
      ['work', '--threads', '1', '--exit-when-drained'],
      env,
    );
    assert.equal(work.code, 0, work.stderr);

    const exported = await runCli(
      ['export', '--run', 'done-1', '-o', output],
      env,
    );
    assert.equal(exported.code, 0, exported.stderr);
    assert.match(exported.stderr, /Redis records expire in 2 days/);
    for (const ttl of await ttls('done-1')) {
      assert.ok(ttl > 2 * DAY_SECONDS - 60, `TTL ${ttl} s`);
      assert.ok(ttl <= 2 * DAY_SECONDS, `TTL ${ttl} s`);
    }
  });

  it('lists the exported run in status', async () => {
    assert.deepEqual(await listedRuns(env), ['done-1']);
  });

  it('forget deletes the records', async () => {
    const result = await runCli(['forget', '--run', 'done-1'], env);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stderr, /^run done-1: Redis records deleted; files/m);
    for (const name of RECORD_KEYS) {
      assert.equal(await redis.exists(key('done-1', name)), 0, name);
    }
    assert.deepEqual(await listedRuns(env), []);
  });

  it('forget keeps the exported file', () => {
    assert.equal(existsSync(output), true);
    assert.equal(readJsonl(output).length, 2);
  });

  it('forget rejects an unknown run', async () => {
    const result = await runCli(['forget', '--run', 'done-1'], env);
    assert.equal(result.code, 1);
    assert.equal(
      result.stderr.trim(),
      `uie-batch: run done-1 not found in queue ${QUEUE}; uie-batch status lists the runs`,
    );
  });

  it('status drops a run whose records expired', async () => {
    const queued = await runCli(['enqueue', csv, '--run', 'gone-1'], env);
    assert.equal(queued.code, 0, queued.stderr);
    assert.deepEqual(await listedRuns(env), ['gone-1']);
    for (const name of RECORD_KEYS) {
      await redis.pexpire(key('gone-1', name), 1);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));

    assert.deepEqual(await listedRuns(env), []);
    const runsKey = `${prefix}:${QUEUE}:uie:runs`;
    assert.equal(await redis.sismember(runsKey, 'gone-1'), 0);
  });

  it('forget rejects a run with waiting jobs', async () => {
    const queued = await runCli(['enqueue', csv, '--run', 'wait-1'], env);
    assert.equal(queued.code, 0, queued.stderr);

    const rejected = await runCli(['forget', '--run', 'wait-1'], env);
    assert.equal(rejected.code, 1);
    assert.equal(
      rejected.stderr.trim(),
      'uie-batch: run wait-1 still has 1 waiting or active job; ' +
        'wait until the workers finish them, or pass --force to forget it now',
    );
    assert.equal(await redis.exists(key('wait-1', 'docs')), 1);
  });

  it('forget --force removes waiting jobs', async () => {
    const result = await runCli(['forget', '--run', 'wait-1', '--force'], env);
    assert.equal(result.code, 0, result.stderr);
    assert.match(
      result.stderr,
      /Redis records deleted, 1 waiting jobs removed/,
    );
    assert.equal(await redis.exists(key('wait-1', 'docs')), 0);
    const waiting = await redis.lrange(`${prefix}:${QUEUE}:wait`, 0, -1);
    assert.equal(
      waiting.some((id) => id.startsWith('wait-1.')),
      false,
      waiting.join(', '),
    );
  });
});

describe('RunStore.expireAfterExport', () => {
  const prefix = uniquePrefix('retention-store');
  const redis = new Redis(REDIS_URL);
  const record = {
    id: 'a',
    file: '/data/a.csv',
    line: 2,
    seq: 0,
    chunks: 1,
  };
  const store = (run: string) => new RunStore(redis, prefix, QUEUE, run);
  const statsTtl = (run: string) =>
    redis.ttl(`${prefix}:${QUEUE}:uie:run:${run}:stats`);

  after(async () => {
    redis.disconnect();
    await deletePrefix(prefix);
  });

  it('applies the retention recorded at enqueue', async () => {
    await store('r5').record([record], 5);
    assert.equal(await store('r5').expireAfterExport(30), 5);
    const ttl = await statsTtl('r5');
    assert.ok(ttl > 5 * DAY_SECONDS - 60, `TTL ${ttl} s`);
    assert.ok(ttl <= 5 * DAY_SECONDS, `TTL ${ttl} s`);
  });

  it('keeps records for a retention of 0', async () => {
    await store('r0').record([record], 0);
    assert.equal(await store('r0').expireAfterExport(30), 0);
    assert.equal(await statsTtl('r0'), -1);
  });

  it('uses the default without a recorded retention', async () => {
    await store('old').reserveSeq(1);
    assert.equal(await store('old').expireAfterExport(3), 3);
    assert.ok((await statsTtl('old')) > 2 * DAY_SECONDS);
  });

  it('stops expiry when documents are added', async () => {
    await store('r5').record([{ ...record, id: 'b', seq: 1 }], 5);
    assert.equal(await statsTtl('r5'), -1);
  });

  it('does not count chunks of a deleted run', async () => {
    await store('r0').clear();
    await store('r0').countDone(4);
    assert.equal(await store('r0').exists(), false);
  });
});

describe('RunStore.countDone', () => {
  const prefix = uniquePrefix('count-done');
  const redis = new Redis(REDIS_URL);
  const store = new RunStore(redis, prefix, QUEUE, 'c1');
  const record = { id: 'a', file: '/data/a.csv', line: 2, seq: 0, chunks: 3 };
  const done = async () => (await store.stats()).done ?? 0;

  before(async () => {
    await store.record([record], 2);
  });

  after(async () => {
    redis.disconnect();
    await deletePrefix(prefix);
  });

  it('counts a job once', async () => {
    await store.countDone(2, undefined, 'job-1');
    await store.countDone(2, undefined, 'job-1');
    assert.equal(await done(), 2);
  });

  it('counts each job', async () => {
    await store.countDone(1, undefined, 'job-2');
    assert.equal(await done(), 3);
  });

  it('counts every call without a job id', async () => {
    await store.countDone(1);
    await store.countDone(1);
    assert.equal(await done(), 5);
  });

  it('keeps the earliest job start', async () => {
    const now = Date.now();
    await store.countDone(1, undefined, 'job-3', now - 5000);
    await store.countDone(1, undefined, 'job-4', now - 1000);
    assert.equal((await store.stats()).startedAt, now - 5000);
    await store.countDone(1, undefined, 'job-5', now - 60_000);
    assert.equal((await store.stats()).startedAt, now - 60_000);
    assert.equal(await done(), 8);
  });

  it('expires the job ids with the run', async () => {
    await store.expireAfterExport(30);
    const ttl = await redis.ttl(`${prefix}:${QUEUE}:uie:run:c1:done-jobs`);
    assert.ok(ttl > DAY_SECONDS, `TTL ${ttl} s`);
  });

  it('deletes the job ids with the run', async () => {
    await store.clear();
    assert.equal(
      await redis.exists(`${prefix}:${QUEUE}:uie:run:c1:done-jobs`),
      0,
    );
  });
});

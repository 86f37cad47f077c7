import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';

import { Redis } from 'ioredis';

import { RedisLock } from '../src/queue/redis-lock.js';
import { countProducers, RunStore } from '../src/queue/run-store.js';
import {
  deletePrefix,
  readJsonl,
  REDIS_URL,
  runCli,
  startCli,
  tempDir,
  uniquePrefix,
} from './helpers.js';

// The producer sniffs the encoding from the first 64 KiB and then queues
// its documents in batches of 500. The first rows are more than 64 KiB, so
// three batches reach the queue while the rest of the input is unwritten.
const FIRST = 1600;
const QUEUED = 1500;
const REST = 5;

function rows(from: number, count: number): string {
  let text = '';
  for (let i = from; i < from + count; i++) {
    text += `doc-${i},张三昨天在北京见到了李四。\n`;
  }
  return text;
}

describe('a draining worker and a producer still reading its input', () => {
  const prefix = uniquePrefix('drain-producers');
  const dir = tempDir('drain-producers');
  const env = {
    UIE_PREFIX: prefix,
    UIE_OUTPUT_DIR: join(dir, 'results'),
    UIE_SCHEMA: '人物,地点',
  };
  const run = 'slow-pipe';

  after(() => deletePrefix(prefix));

  it(
    'waits for the producer before it stops',
    { timeout: 180_000 },
    async () => {
      const { child: producer, result: producerResult } = startCli(
        ['enqueue', '-', '--run', run],
        env,
        'pipe',
      );
      producer.stdin!.write('id,text\n' + rows(1, FIRST));

      const redis = new Redis(REDIS_URL);
      const worker = startCli(
        ['work', '--threads', '1', '--exit-when-drained'],
        env,
      );
      try {
        let workerExited = false;
        void worker.result.then(() => (workerExited = true));

        // Wait until the worker has the results of the first batch.
        const store = new RunStore(redis, prefix, 'uie-batch', run);
        const deadline = Date.now() + 60_000;
        for (;;) {
          const { done = 0 } = await store.stats();
          if (done >= QUEUED) break;
          if (workerExited) assert.fail((await worker.result).stderr);
          assert.ok(Date.now() < deadline, 'the first batch was not processed');
          await delay(50);
        }
        // Twenty drain polls, which are 50 ms apart.
        await delay(1000);
        assert.equal(workerExited, false, 'worker stopped while enqueue ran');
        assert.equal(await countProducers(redis, prefix, 'uie-batch'), 1);
        producer.stdin!.end(rows(FIRST + 1, REST));
        const produced = await producerResult;
        assert.equal(produced.code, 0, produced.stderr);
        const { code, stderr } = await worker.result;
        assert.equal(code, 0, stderr);
        assert.equal(await countProducers(redis, prefix, 'uie-batch'), 0);
      } finally {
        producer.kill();
        worker.child.kill();
        redis.disconnect();
      }

      const out = join(dir, 'out.jsonl');
      const exported = await runCli(['export', '--run', run, '-o', out], env);
      assert.equal(exported.code, 0, exported.stderr);
      const lines = readJsonl<{ id: string }>(out);
      assert.equal(lines.length, FIRST + REST);
      assert.equal(lines.at(-1)!.id, `doc-${FIRST + REST}`);
    },
  );
});

describe('a draining worker started before the producer', () => {
  const prefix = uniquePrefix('drain-start');
  const dir = tempDir('drain-start');
  const env = {
    UIE_PREFIX: prefix,
    UIE_OUTPUT_DIR: join(dir, 'results'),
    UIE_SCHEMA: '人物,地点',
  };
  const run = 'late-producer';

  after(() => deletePrefix(prefix));

  it('waits for the producer to start', async () => {
    const csv = join(dir, 'in.csv');
    writeFileSync(csv, 'id,text\n' + rows(1, 50));
    const worker = startCli(
      ['work', '--threads', '1', '--exit-when-drained'],
      env,
    );
    // Longer than the worker takes to start and find an empty queue, and
    // well within its start-up grace.
    await delay(2000);
    const enqueued = await runCli(['enqueue', csv, '--run', run], env);
    assert.equal(enqueued.code, 0, enqueued.stderr);
    const { code, stderr } = await worker.result;
    assert.equal(code, 0, stderr);

    const out = join(dir, 'out.jsonl');
    const exported = await runCli(['export', '--run', run, '-o', out], env);
    assert.equal(exported.code, 0, exported.stderr);
    assert.equal(readJsonl(out).length, 50);
  });
});

describe('an interrupted enqueue', () => {
  const prefix = uniquePrefix('enqueue-signal');
  const dir = tempDir('enqueue-signal');
  const env = { UIE_PREFIX: prefix, UIE_OUTPUT_DIR: join(dir, 'results') };
  const run = 'stopped';

  after(() => deletePrefix(prefix));

  it('releases its run at once', { timeout: 60_000 }, async () => {
    const { child: producer, result } = startCli(
      ['enqueue', '-', '--run', run],
      env,
      'pipe',
    );
    // The input stays open, so the producer keeps its lock until stopped.
    producer.stdin!.write('id,text\n' + rows(1, 10));

    const redis = new Redis(REDIS_URL);
    try {
      const deadline = Date.now() + 30_000;
      while ((await countProducers(redis, prefix, 'uie-batch')) === 0) {
        assert.ok(Date.now() < deadline, 'producer never registered');
        await delay(20);
      }
      producer.kill('SIGTERM');
      const { code, stderr } = await result;
      assert.equal(code, 143, stderr);
      assert.match(
        stderr,
        /^uie-batch: enqueue into run stopped interrupted; the documents queued so far stay queued/m,
      );
      assert.equal(await countProducers(redis, prefix, 'uie-batch'), 0);
    } finally {
      producer.kill('SIGKILL');
      redis.disconnect();
    }

    // Without the release, the run would stay locked for a minute.
    const csv = join(dir, 'in.csv');
    writeFileSync(csv, 'id,text\n' + rows(1, 10));
    const again = await runCli(['enqueue', csv, '--run', run], env);
    assert.equal(again.code, 0, again.stderr);
  });
});

describe('RedisLock registry', () => {
  const prefix = uniquePrefix('lock-registry');
  const registry = `${prefix}:registry`;
  const redis = new Redis(REDIS_URL);

  after(async () => {
    await deletePrefix(prefix);
    redis.disconnect();
  });

  it('counts a lock from acquire to release', async () => {
    const first = await RedisLock.acquire(
      redis,
      `${prefix}:a`,
      60_000,
      'test',
      registry,
    );
    const second = await RedisLock.acquire(
      redis,
      `${prefix}:b`,
      60_000,
      undefined,
      registry,
    );
    assert.ok(first);
    assert.ok(second);
    assert.equal(await RedisLock.countLive(redis, registry), 2);
    await first.release();
    assert.equal(await RedisLock.countLive(redis, registry), 1);
    await second.release();
    assert.equal(await RedisLock.countLive(redis, registry), 0);
  });

  it('does not register a lock it failed to take', async () => {
    const holder = await RedisLock.acquire(
      redis,
      `${prefix}:c`,
      60_000,
      undefined,
      registry,
    );
    const rejected = await RedisLock.acquire(
      redis,
      `${prefix}:c`,
      60_000,
      undefined,
      registry,
    );
    assert.equal(rejected, undefined);
    assert.equal(await RedisLock.countLive(redis, registry), 1);
    await holder!.release();
  });

  it('stops counting an entry whose holder stopped renewing it', async () => {
    // The entry of a holder that died: its time-to-live ran out a second ago.
    const [seconds] = await redis.time();
    await redis.zadd(registry, Number(seconds) * 1000 - 1000, 'dead holder');
    assert.equal(await RedisLock.countLive(redis, registry), 0);
    assert.equal(await redis.zcard(registry), 0);
  });
});

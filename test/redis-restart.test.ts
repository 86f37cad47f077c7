import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';

import { Redis } from 'ioredis';

import {
  csvField,
  newsParagraphs,
  readJsonl,
  runCli,
  startCli,
  tempDir,
} from './helpers.js';
import { PrivateRedis } from './private-redis.js';

interface Line {
  id: string;
  entities: unknown[];
  error?: string;
}

const PREFIX = 'uie-restart';
const QUEUE = 'uie-batch';

/** Polls a Redis value until it reaches min, or fails after the timeout. */
async function waitFor(
  url: string,
  read: (redis: Redis) => Promise<number>,
  min: number,
  description: string,
  stopped?: ChildProcess,
): Promise<void> {
  const redis = new Redis(url);
  try {
    const deadline = Date.now() + 300_000;
    while (Date.now() < deadline) {
      if ((await read(redis)) >= min) return;
      if (stopped && stopped.exitCode !== null) {
        throw new Error(
          `the process ended before ${description} reached ${min}`,
        );
      }
      await delay(50);
    }
    throw new Error(`${description} did not reach ${min} in 300 s`);
  } finally {
    redis.disconnect();
  }
}

const runKey = (run: string, part: string) =>
  `${PREFIX}:${QUEUE}:uie:run:${run}:${part}`;

describe('when Redis restarts during enqueue', () => {
  const dir = tempDir('restart-enqueue');
  let redis: PrivateRedis;
  before(async () => {
    redis = await PrivateRedis.start(dir);
  });
  after(() => redis.stop());

  it('queues every document once', async () => {
    const count = 20_000;
    const csv = join(dir, 'docs.csv');
    const rows = Array.from(
      { length: count },
      (_, i) => `d${i},第${i}号文件：张三在北京市工作。`,
    );
    writeFileSync(csv, ['id,text', ...rows].join('\n') + '\n');
    const env = {
      REDIS_URL: redis.url,
      UIE_PREFIX: PREFIX,
      UIE_CHUNKS_PER_JOB: '1',
    };

    const producer = startCli(['enqueue', csv, '--run', 'r1'], env);
    await waitFor(
      redis.url,
      (r) => r.hlen(runKey('r1', 'docs')),
      count / 10,
      'documents recorded',
      producer.child,
    );
    await redis.stop();
    await delay(1500);
    await redis.restart();

    const { code, stderr } = await producer.result;
    assert.equal(code, 0, stderr);
    assert.match(stderr, /20000 documents, 20000 chunks in 20000 jobs queued/);
    const client = new Redis(redis.url);
    try {
      assert.equal(await client.hlen(runKey('r1', 'docs')), count);
      assert.equal(await client.llen(`${PREFIX}:${QUEUE}:wait`), count);
    } finally {
      client.disconnect();
    }
    const again = await runCli(['enqueue', csv, '--run', 'r1'], env);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stderr, /: 0 documents, 0 chunks in 0 jobs queued/);
  });
});

const COUNT = 3000;
const paragraphs = newsParagraphs(COUNT);

describe(
  'when a worker is killed and Redis restarts mid-run',
  { skip: paragraphs ? false : 'corpora not found' },
  () => {
    const dir = tempDir('restart-run');
    const csv = join(dir, 'news.csv');
    let redis: PrivateRedis;
    before(async () => {
      const rows = paragraphs!.map((p, i) => `n${i + 1},${csvField(p)}`);
      writeFileSync(csv, ['id,text', ...rows].join('\n') + '\n');
      redis = await PrivateRedis.start(dir);
    });
    after(() => redis.stop());

    it(`exports all ${COUNT} documents exactly as extract does`, async () => {
      const env = {
        REDIS_URL: redis.url,
        UIE_PREFIX: PREFIX,
        UIE_OUTPUT_DIR: join(dir, 'results'),
      };
      const reference = join(dir, 'reference.jsonl');
      const direct = await runCli(
        ['extract', csv, '-o', reference, '--threads', '2'],
        env,
      );
      assert.equal(direct.code, 0, direct.stderr);
      const enqueued = await runCli(['enqueue', csv, '--run', 'news'], env);
      assert.equal(enqueued.code, 0, enqueued.stderr);

      const work = ['work', '--threads', '1', '--exit-when-drained'];
      const done = (r: Redis) =>
        r.hget(runKey('news', 'stats'), 'done').then(Number);
      const victim = startCli(['work', '--threads', '1'], env);
      const survivor = startCli(work, env);
      await waitFor(redis.url, done, 150, 'chunks done');
      victim.child.kill('SIGKILL');
      await victim.result;

      await waitFor(redis.url, done, 300, 'chunks done');
      await redis.stop();
      await delay(2000);
      await redis.restart();
      // The killed worker's container comes back, as a restart policy would.
      const replacement = startCli(work, env);

      for (const w of [survivor, replacement]) {
        const { code, stderr } = await w.result;
        assert.equal(code, 0, stderr);
      }
      const out = join(dir, 'out.jsonl');
      const exported = await runCli(
        ['export', '--run', 'news', '-o', out],
        env,
      );
      assert.equal(exported.code, 0, exported.stderr);
      const lines = readJsonl<Line>(out);
      assert.equal(lines.length, COUNT);
      assert.equal(lines.filter((l) => l.error).length, 0);
      assert.deepEqual(lines, readJsonl<Line>(reference));
    });
  },
);

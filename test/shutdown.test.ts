import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { Queue } from 'bullmq';
import { Redis } from 'ioredis';

import {
  BIN,
  deletePrefix,
  REDIS_URL,
  ROOT,
  runCli,
  tempDir,
  uniquePrefix,
} from './helpers.js';
import { freePort, PrivateRedis } from './private-redis.js';

const CRASH_PLUGIN = join(ROOT, 'test/fixtures/crash-plugin.mjs');

/** A CLI process started in the background, with its stderr collected. */
interface Background {
  child: ChildProcess;
  stderr: () => string;
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

function startCli(args: string[], env: Record<string, string>): Background {
  const child = spawn(process.execPath, [BIN, ...args], {
    env: { ...process.env, LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += d));
  const exit = new Promise<{
    code: number | null;
    signal: NodeJS.Signals | null;
  }>((resolve) =>
    child.on('close', (code, signal) => resolve({ code, signal })),
  );
  return { child, stderr: () => stderr, exit };
}

/** Waits until the process's stderr contains text. */
async function waitForLog(
  proc: Background,
  text: string,
  timeoutMs = 60_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!proc.stderr().includes(text)) {
    if (proc.child.exitCode !== null || Date.now() > deadline) {
      throw new Error(`no "${text}" on stderr:\n${proc.stderr()}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * Sends a signal and returns the exit code and the seconds it took. A
 * process still running after 30 s is killed, and its code is null.
 */
async function stopWith(
  proc: Background,
  signal: NodeJS.Signals,
): Promise<{ code: number | null; seconds: number }> {
  const sent = Date.now();
  proc.child.kill(signal);
  const timer = setTimeout(() => proc.child.kill('SIGKILL'), 30_000);
  const { code } = await proc.exit;
  clearTimeout(timer);
  return { code, seconds: (Date.now() - sent) / 1000 };
}

/** Waits until a job is active and its task has had time to reach a thread. */
async function activeJobs(queue: Queue, worker: Background) {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const jobs = await queue.getJobs(['active']);
    if (jobs.length > 0) {
      // The task reaches the thread a moment after the job turns active.
      await new Promise((r) => setTimeout(r, 500));
      return jobs;
    }
    if (Date.now() > deadline) {
      throw new Error(`no job became active:\n${worker.stderr()}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Polls a run's stats field on the Redis at url until it is at least 1. */
async function waitForStat(
  url: string,
  prefix: string,
  run: string,
  field: string,
  worker: Background,
): Promise<void> {
  const client = new Redis(url);
  try {
    const key = `${prefix}:uie-batch:uie:run:${run}:stats`;
    const deadline = Date.now() + 60_000;
    while (Number(await client.hget(key, field)) < 1) {
      if (Date.now() > deadline) {
        throw new Error(
          `run ${run} has no ${field} chunk:\n${worker.stderr()}`,
        );
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  } finally {
    client.disconnect();
  }
}

function partialFiles(dir: string): string[] {
  return readdirSync(dir).filter((name) => name.includes('.partial-'));
}

describe('when a worker cannot reach Redis', () => {
  it('exits 1 at once without active jobs', async () => {
    // Nothing listens on the port, so every connection attempt is refused.
    const port = await freePort();
    const worker = startCli(['work', '--threads', '1'], {
      REDIS_URL: `redis://127.0.0.1:${port}`,
      UIE_SHUTDOWN_GRACE_SECONDS: '60',
    });
    await waitForLog(worker, '"worker started"');

    const { code, seconds } = await stopWith(worker, 'SIGTERM');
    assert.equal(code, 1, worker.stderr());
    assert.ok(seconds < 3, `exited after ${seconds} s`);
    assert.match(worker.stderr(), /"worker never reached Redis; stopping/);
    assert.doesNotMatch(worker.stderr(), /grace period over/);
  });
});

describe('when Redis stops under a worker', () => {
  const dir = tempDir('redis-stops');
  const outputDir = join(dir, 'results');
  let redis: PrivateRedis;

  before(async () => {
    redis = await PrivateRedis.start(dir);
  });

  after(() => redis.stop());

  it('exits 0 at once without active jobs', async () => {
    const env = {
      REDIS_URL: redis.url,
      UIE_PREFIX: uniquePrefix('idle'),
      UIE_OUTPUT_DIR: outputDir,
    };
    const csv = join(dir, 'one.csv');
    writeFileSync(csv, 'id,text\none,张三在北京市工作。\n');
    const enqueued = await runCli(['enqueue', csv, '--run', 'idle'], env);
    assert.equal(enqueued.code, 0, enqueued.stderr);
    const worker = startCli(['work', '--threads', '1'], {
      ...env,
      UIE_SHUTDOWN_GRACE_SECONDS: '60',
    });
    try {
      // The job's completion shows that the worker reached Redis.
      await waitForStat(redis.url, env.UIE_PREFIX, 'idle', 'done', worker);
      await redis.stop();

      // BullMQ's close() may finish without Redis here, or the idle check
      // stops the worker first; either way it exits 0 at once.
      const { code, seconds } = await stopWith(worker, 'SIGTERM');
      assert.equal(code, 0, worker.stderr());
      assert.ok(seconds < 3, `exited after ${seconds} s`);
      assert.doesNotMatch(worker.stderr(), /grace period over/);
    } finally {
      worker.child.kill('SIGKILL');
    }
  });

  it('waits the grace period for an active job', async () => {
    // The previous test stopped the server, unless it failed first.
    await redis.stop();
    await redis.restart();
    const prefix = uniquePrefix('active');
    const env = {
      REDIS_URL: redis.url,
      UIE_PREFIX: prefix,
      UIE_OUTPUT_DIR: outputDir,
      UIE_CHUNKS_PER_JOB: '1',
    };
    const csv = join(dir, 'stuck.csv');
    writeFileSync(csv, 'id,text\nstuck,【卡死】张三在北京市工作。\n');
    const enqueued = await runCli(['enqueue', csv, '--run', 'stuck'], env);
    assert.equal(enqueued.code, 0, enqueued.stderr);

    const grace = 3;
    const worker = startCli(['work', '--threads', '1'], {
      ...env,
      UIE_PLUGINS: `time,${CRASH_PLUGIN}`,
      UIE_SHUTDOWN_GRACE_SECONDS: String(grace),
    });
    const client = new Redis(redis.url, { maxRetriesPerRequest: 0 });
    client.on('error', () => {});
    const queue = new Queue('uie-batch', { connection: client, prefix });
    try {
      await activeJobs(queue, worker);
      await queue.close();
      await redis.stop();

      const { code, seconds } = await stopWith(worker, 'SIGTERM');
      assert.equal(code, 1, worker.stderr());
      assert.ok(seconds >= grace - 0.5, `exited after ${seconds} s`);
      assert.ok(seconds < grace + 3, `exited after ${seconds} s`);
      assert.match(worker.stderr(), /grace period over/);
      assert.doesNotMatch(worker.stderr(), /stopping without closing/);
    } finally {
      worker.child.kill('SIGKILL');
      client.disconnect();
    }
  });
});

describe('when a job never finishes', () => {
  const prefix = uniquePrefix('shutdown');
  const dir = tempDir('shutdown');
  const outputDir = join(dir, 'results');
  const env = {
    UIE_PREFIX: prefix,
    UIE_OUTPUT_DIR: outputDir,
    UIE_CHUNKS_PER_JOB: '1',
    // With one attempt, a job wrongly failed on shutdown would fail for good.
    UIE_ATTEMPTS: '1',
  };
  after(() => deletePrefix(prefix));

  it('exits 1 and leaves the job for another worker', async () => {
    const csv = join(dir, 'stuck.csv');
    writeFileSync(csv, 'id,text\nstuck,【卡死】张三在北京市工作。\n');
    const enqueued = await runCli(['enqueue', csv, '--run', 'r1'], env);
    assert.equal(enqueued.code, 0, enqueued.stderr);

    const grace = 2;
    const worker = startCli(['work', '--threads', '1'], {
      ...env,
      UIE_PLUGINS: `time,${CRASH_PLUGIN}`,
      UIE_SHUTDOWN_GRACE_SECONDS: String(grace),
    });
    const redis = new Redis(REDIS_URL);
    const queue = new Queue('uie-batch', { connection: redis, prefix });
    try {
      const [job] = await activeJobs(queue, worker);
      const { code, seconds } = await stopWith(worker, 'SIGTERM');
      assert.equal(code, 1, worker.stderr());
      assert.ok(seconds < grace + 3, `exited after ${seconds} s`);
      assert.doesNotMatch(worker.stderr(), /terminate called/);
      assert.doesNotMatch(worker.stderr(), /chunks failed for good/);

      // The job stays active until its lock expires. Then the stalled-job
      // check of another worker moves it back to the waiting list.
      const left = await queue.getJob(job.id!);
      assert.ok(left, 'job still in Redis');
      assert.equal(await left.getState(), 'active');
      assert.equal(left.failedReason, undefined);
      assert.equal(left.attemptsMade, 0);
      const lockTtl = await redis.pttl(`${prefix}:uie-batch:${job.id}:lock`);
      assert.ok(lockTtl > 0, `lock TTL ${lockTtl} ms`);
      const stats = `${prefix}:uie-batch:uie:run:r1:stats`;
      assert.equal(await redis.hget(stats, 'failed'), null);
    } finally {
      worker.child.kill('SIGKILL');
      await queue.close();
      redis.disconnect();
    }
  });
});

describe('when a worker with an active job gets two signals', () => {
  const prefix = uniquePrefix('two-signals');
  const dir = tempDir('two-signals');
  const env = {
    UIE_PREFIX: prefix,
    UIE_OUTPUT_DIR: join(dir, 'results'),
    UIE_CHUNKS_PER_JOB: '1',
  };
  after(() => deletePrefix(prefix));

  it('exits 1 at once on the second signal', async () => {
    const csv = join(dir, 'stuck.csv');
    writeFileSync(csv, 'id,text\nstuck,【卡死】张三在北京市工作。\n');
    const enqueued = await runCli(['enqueue', csv, '--run', 'r2'], env);
    assert.equal(enqueued.code, 0, enqueued.stderr);

    const worker = startCli(['work', '--threads', '1'], {
      ...env,
      UIE_PLUGINS: `time,${CRASH_PLUGIN}`,
      UIE_SHUTDOWN_GRACE_SECONDS: '60',
    });
    const redis = new Redis(REDIS_URL);
    const queue = new Queue('uie-batch', { connection: redis, prefix });
    try {
      await activeJobs(queue, worker);
      worker.child.kill('SIGTERM');
      await waitForLog(worker, '"worker stopping; finishing active jobs"');

      const { code, seconds } = await stopWith(worker, 'SIGINT');
      assert.equal(code, 1, worker.stderr());
      assert.ok(seconds < 5, `exited after ${seconds} s`);
      assert.match(worker.stderr(), /second signal/);
    } finally {
      worker.child.kill('SIGKILL');
      await queue.close();
      redis.disconnect();
    }
  });
});

describe('when extract is interrupted', () => {
  const dir = tempDir('interrupt');
  const csv = join(dir, 'big.csv');
  const names = ['张三', '李四', '王五', '赵六'];
  const places = ['北京市', '上海市', '深圳市', '杭州市'];
  const rows = Array.from(
    { length: 3000 },
    (_, i) =>
      `d${i},${names[i % 4]}昨天在${places[(i >> 2) % 4]}参加了第${i}次会议，` +
      `会后去了${places[(i + 1) % 4]}的公司。`,
  );
  writeFileSync(csv, ['id,text', ...rows].join('\n') + '\n');

  for (const [signal, expected] of [
    ['SIGINT', 130],
    ['SIGTERM', 143],
    ['SIGHUP', 129],
  ] as const) {
    it(`exits ${expected} on ${signal} mid-run`, async () => {
      const out = join(dir, `${signal}.jsonl`);
      writeFileSync(out, 'earlier output\n');
      const extract = startCli(
        ['extract', csv, '-o', out, '--threads', '1'],
        {},
      );
      await waitForLog(extract, '"engine started"');
      // Long enough for the thread to be inside ONNX Runtime runs.
      await new Promise((r) => setTimeout(r, 1000));

      const { code, seconds } = await stopWith(extract, signal);
      assert.equal(code, expected, extract.stderr());
      assert.ok(seconds < 5, `exited after ${seconds} s`);
      assert.doesNotMatch(extract.stderr(), /terminate called/);
      const lines = extract.stderr().trimEnd().split('\n');
      assert.equal(
        lines.pop(),
        'uie-batch: interrupted; the output file was not changed',
      );
      for (const line of lines) {
        assert.doesNotThrow(() => JSON.parse(line), `not a log line: ${line}`);
      }
      assert.deepEqual(partialFiles(dir), []);
      assert.equal(readFileSync(out, 'utf8'), 'earlier output\n');
    });
  }

  it('exits 130 with a thread that never finishes', async () => {
    const stuckCsv = join(dir, 'stuck.csv');
    writeFileSync(stuckCsv, 'id,text\nstuck,【卡死】张三在北京市工作。\n');
    const out = join(dir, 'stuck.jsonl');
    const extract = startCli(
      ['extract', stuckCsv, '-o', out, '--threads', '1'],
      { UIE_PLUGINS: `time,${CRASH_PLUGIN}` },
    );
    await waitForLog(extract, '"engine started"');
    await new Promise((r) => setTimeout(r, 500));

    const { code, seconds } = await stopWith(extract, 'SIGINT');
    assert.equal(code, 130, extract.stderr());
    assert.ok(seconds < 5, `exited after ${seconds} s`);
    assert.doesNotMatch(extract.stderr(), /terminate called/);
    assert.deepEqual(partialFiles(dir), []);
  });

  it('exits 130 while its FIFO input has no writer', async () => {
    const fifoDir = tempDir('interrupt-fifo');
    const fifo = join(fifoDir, 'input.fifo');
    execFileSync('mkfifo', [fifo]);
    const out = join(fifoDir, 'out.jsonl');
    const extract = startCli(
      ['extract', fifo, '-o', out, '--threads', '1'],
      {},
    );
    await waitForLog(extract, '"engine started"');
    // Time to reach the open of the FIFO, which comes after the output's.
    await new Promise((r) => setTimeout(r, 1000));

    await interruptNothingWritten(extract, out);
    assert.deepEqual(partialFiles(fifoDir), []);
    assert.equal(existsSync(out), false);
  });

  it('exits 130 while its FIFO output has no reader', async () => {
    const fifoDir = tempDir('interrupt-fifo-output');
    const csv = join(fifoDir, 'input.csv');
    writeFileSync(csv, 'id,text\n1,张三在北京市工作。\n');
    const fifo = join(fifoDir, 'out.fifo');
    execFileSync('mkfifo', [fifo]);
    const extract = startCli(
      ['extract', csv, '-o', fifo, '--threads', '1'],
      {},
    );
    // Time to start and to reach the open of the FIFO.
    await new Promise((r) => setTimeout(r, 1500));

    await interruptNothingWritten(extract, fifo);
  });

  /** Sends SIGINT and checks the exit and the message for an output that got nothing. */
  async function interruptNothingWritten(
    extract: Parameters<typeof stopWith>[0],
    output: string,
  ): Promise<void> {
    const { code, seconds } = await stopWith(extract, 'SIGINT');
    assert.equal(code, 130, extract.stderr());
    assert.ok(seconds < 5, `exited after ${seconds} s`);
    const lines = extract.stderr().trimEnd().split('\n');
    assert.equal(
      lines.pop(),
      `uie-batch: interrupted; nothing was written to ${output}`,
    );
  }
});

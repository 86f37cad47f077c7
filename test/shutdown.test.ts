import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
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

const CRASH_PLUGIN = join(ROOT, 'test/fixtures/crash-plugin.mjs');

// A port where nothing listens, so every connection attempt is refused.
const CLOSED_REDIS_URL = 'redis://127.0.0.1:1';

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

function partialFiles(dir: string): string[] {
  return readdirSync(dir).filter((name) => name.includes('.partial-'));
}

describe('when a worker cannot reach Redis', () => {
  it('exits 1 after the grace period', async () => {
    const grace = 3;
    const worker = startCli(['work', '--threads', '1'], {
      REDIS_URL: CLOSED_REDIS_URL,
      UIE_SHUTDOWN_GRACE_SECONDS: String(grace),
    });
    await waitForLog(worker, '"worker started"');

    const { code, seconds } = await stopWith(worker, 'SIGTERM');
    assert.equal(code, 1, worker.stderr());
    assert.ok(seconds < grace + 5, `exited after ${seconds} s`);
    assert.match(worker.stderr(), /grace period over/);
  });

  it('exits 1 at once on a second signal', async () => {
    const worker = startCli(['work', '--threads', '1'], {
      REDIS_URL: CLOSED_REDIS_URL,
      UIE_SHUTDOWN_GRACE_SECONDS: '60',
    });
    await waitForLog(worker, '"worker started"');
    worker.child.kill('SIGTERM');
    await waitForLog(worker, '"worker stopping; finishing active jobs"');

    const { code, seconds } = await stopWith(worker, 'SIGINT');
    assert.equal(code, 1, worker.stderr());
    assert.ok(seconds < 5, `exited after ${seconds} s`);
    assert.match(worker.stderr(), /second signal/);
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
});

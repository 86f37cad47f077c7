import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as delay } from 'node:timers/promises';

import { Redis } from 'ioredis';

import { partsDir } from '../src/output/part-files.js';
import { countProducers } from '../src/queue/run-store.js';
import { runChild, type ChildResult } from './child-process.js';
import {
  extractPhases,
  workPhases,
  type ExtractPhases,
  type WorkPhases,
} from './log-phases.js';
import { ROOT } from './options.js';

const BIN = join(ROOT, 'bin/uie-batch.js');

// At info, extract and work log the lines the bench reads their phases from.
// The other children log at warn, so their rows stay comparable with earlier
// results.
const PHASE_LOG = { LOG_LEVEL: 'info' };

/** Settings shared by every CLI child of one bench run. */
export interface CliContext {
  /** Folder for outputs and run results; deleted by the caller. */
  dir: string;
  modelDir: string;
  schema: string[];
  redisUrl: string;
  /** Redis key prefix of this bench run only. */
  prefix: string;
  /** Queue name the children use. */
  queue: string;
  timeoutSeconds: number;
}

/** Wall times of the queue path, in milliseconds. */
export interface QueueTimes {
  enqueueMs: number;
  workMs: number;
  exportMs: number;
  totalMs: number;
  /** The work command's phases, from its log lines. */
  work: WorkPhases;
}

/**
 * Wall times of the queue path with the worker started while enqueue runs,
 * in milliseconds.
 */
export interface OverlapTimes {
  /** From spawning enqueue until both enqueue and work have exited. */
  queuedMs: number;
  exportMs: number;
  totalMs: number;
}

/** Wall time of one extract run and its phases, in milliseconds. */
export interface ExtractTimes extends ExtractPhases {
  wallMs: number;
}

/** Wall times of one scale-out run, in milliseconds, and its export. */
export interface ScaleOutTimes {
  enqueueMs: number;
  /** From starting the first worker process until the last one exited. */
  workMs: number;
  exportMs: number;
  /**
   * Worker processes that wrote results, each to its own part file. Fewer
   * than started means some found the queue empty.
   */
  busyWorkers: number;
  /** The exported JSONL file, kept for the comparison between counts. */
  output: string;
}

/** Output folder of the CLI children, where workers write part files. */
function resultsDir(ctx: CliContext): string {
  return join(ctx.dir, 'results');
}

function cli(
  ctx: CliContext,
  args: string[],
  env: Record<string, string> = {},
) {
  return runChild(process.execPath, [BIN, ...args], {
    timeoutSeconds: ctx.timeoutSeconds,
    env: {
      LOG_LEVEL: 'warn',
      REDIS_URL: ctx.redisUrl,
      UIE_PREFIX: ctx.prefix,
      UIE_QUEUE: ctx.queue,
      UIE_OUTPUT_DIR: resultsDir(ctx),
      UIE_MODEL_DIR: ctx.modelDir,
      ...env,
    },
  });
}

/**
 * Times `extract CSV --threads N` from spawn to exit.
 *
 * @throws Error when the output does not have one line per input row
 */
export async function timeExtract(
  ctx: CliContext,
  csv: string,
  rows: number,
  threads: number,
): Promise<number> {
  return (await runExtract(ctx, csv, rows, threads)).wallMs;
}

/**
 * Times `extract CSV --threads N` from spawn to exit at LOG_LEVEL=info and
 * splits that time into phases by its log lines.
 *
 * @throws Error when the output does not have one line per input row, or
 *   the log lacks a line the phases need
 */
export async function timeExtractPhases(
  ctx: CliContext,
  csv: string,
  rows: number,
  threads: number,
): Promise<ExtractTimes> {
  const result = await runExtract(ctx, csv, rows, threads, PHASE_LOG);
  return { wallMs: result.wallMs, ...extractPhases(result) };
}

async function runExtract(
  ctx: CliContext,
  csv: string,
  rows: number,
  threads: number,
  env: Record<string, string> = {},
): Promise<ChildResult> {
  const output = extractOutput(ctx, threads);
  const args = ['extract', csv, '-o', output, '--threads', String(threads)];
  const schema = ['--schema', ctx.schema.join(',')];
  const result = await cli(ctx, [...args, ...schema], env);
  expectLines(output, rows);
  return result;
}

/** Output file of `extract --threads N`, rewritten by each repeat. */
export function extractOutput(ctx: CliContext, threads: number): string {
  return join(ctx.dir, `extract-${threads}.jsonl`);
}

/**
 * Times enqueue, `work --threads 2 --exit-when-drained` and export of one
 * run, then deletes the prefix's keys so the next run starts empty. The
 * work command runs at LOG_LEVEL=info, and its log lines give its phases.
 */
export async function timeQueue(
  ctx: CliContext,
  csv: string,
  rows: number,
  run: string,
): Promise<QueueTimes> {
  const output = join(ctx.dir, `${run}.jsonl`);
  const schema = ['--schema', ctx.schema.join(',')];
  try {
    const enqueue = await cli(ctx, ['enqueue', csv, '--run', run, ...schema]);
    const work = await cli(
      ctx,
      ['work', '--threads', '2', '--exit-when-drained'],
      PHASE_LOG,
    );
    const exported = await cli(ctx, ['export', '--run', run, '-o', output]);
    expectLines(output, rows);
    const times = {
      enqueueMs: enqueue.wallMs,
      workMs: work.wallMs,
      exportMs: exported.wallMs,
    };
    return {
      ...times,
      totalMs: times.enqueueMs + times.workMs + times.exportMs,
      work: workPhases(work),
    };
  } finally {
    await deletePrefix(ctx.redisUrl, ctx.prefix);
  }
}

/**
 * Times the queue path as a batch job runs it: `work --threads 2
 * --exit-when-drained` starts while enqueue is still queuing, so the
 * worker's start-up overlaps enqueue; export follows once both have exited.
 * Deletes the prefix's keys afterwards.
 *
 * @throws Error when a child fails or the export lacks a line per row
 */
export async function timeQueueOverlapped(
  ctx: CliContext,
  csv: string,
  rows: number,
  run: string,
): Promise<OverlapTimes> {
  const output = join(ctx.dir, `${run}.jsonl`);
  const schema = ['--schema', ctx.schema.join(',')];
  const redis = localRedis(ctx.redisUrl);
  try {
    await redis.connect();
    const started = performance.now();
    const enqueue = cli(ctx, ['enqueue', csv, '--run', run, ...schema]);
    let enqueueSettled = false;
    void enqueue.then(
      () => (enqueueSettled = true),
      () => (enqueueSettled = true),
    );
    // A worker that polled before the producer took its run lock would
    // find no jobs and no producer and stop at once.
    while (
      !enqueueSettled &&
      (await countProducers(redis, ctx.prefix, ctx.queue)) === 0
    ) {
      await delay(2);
    }
    const work = cli(ctx, ['work', '--threads', '2', '--exit-when-drained']);
    // Both must exit before the keys are deleted, even when one fails.
    const settled = await Promise.allSettled([enqueue, work]);
    const queuedMs = performance.now() - started;
    const failed = settled.find((s) => s.status === 'rejected');
    if (failed) throw failed.reason;
    const exported = await cli(ctx, ['export', '--run', run, '-o', output]);
    expectLines(output, rows);
    return {
      queuedMs,
      exportMs: exported.wallMs,
      totalMs: queuedMs + exported.wallMs,
    };
  } finally {
    redis.disconnect();
    await deletePrefix(ctx.redisUrl, ctx.prefix);
  }
}

/**
 * Enqueues the CSV as one run, starts `workers` processes of
 * `work --threads 1 --exit-when-drained` at once, times them until the last
 * exits, then exports the run. Deletes the prefix's keys afterwards.
 *
 * @throws Error when a worker fails or the export lacks a line per row
 */
export async function timeScaleOut(
  ctx: CliContext,
  csv: string,
  rows: number,
  run: string,
  workers: number,
): Promise<ScaleOutTimes> {
  const output = join(ctx.dir, `scale-out-${workers}.jsonl`);
  const schema = ['--schema', ctx.schema.join(',')];
  try {
    const enqueue = await cli(ctx, ['enqueue', csv, '--run', run, ...schema]);
    const workMs = await timeWorkers(ctx, workers);
    const exported = await cli(ctx, ['export', '--run', run, '-o', output]);
    expectLines(output, rows);
    const parts = readdirSync(partsDir(resultsDir(ctx), run));
    return {
      enqueueMs: enqueue.wallMs,
      workMs,
      exportMs: exported.wallMs,
      busyWorkers: parts.filter((f) => f.endsWith('.jsonl')).length,
      output,
    };
  } finally {
    await deletePrefix(ctx.redisUrl, ctx.prefix);
  }
}

/** Runs the worker processes side by side and returns ms until the last exited. */
async function timeWorkers(ctx: CliContext, workers: number): Promise<number> {
  const args = ['work', '--threads', '1', '--exit-when-drained'];
  // Workers on one host would contend for a metrics port set in the
  // environment, so the bench turns the metrics server off.
  const env = { UIE_METRICS_PORT: '0' };
  const started = performance.now();
  const runs: Promise<ChildResult>[] = [];
  for (let i = 0; i < workers; i++) runs.push(cli(ctx, args, env));
  // Promise.all would settle at the first failure, but the caller deletes
  // the keys next, which must wait until every worker has exited.
  const settled = await Promise.allSettled(runs);
  const workMs = performance.now() - started;
  const failed = settled.find((s) => s.status === 'rejected');
  if (failed) throw failed.reason;
  return workMs;
}

/**
 * Checks that two output files are byte for byte the same.
 *
 * @throws Error naming both files and the first line that differs
 */
export function expectSameBytes(actual: string, expected: string): void {
  const a = readFileSync(actual);
  const b = readFileSync(expected);
  if (a.equals(b)) return;

  const aLines = a.toString('utf8').split('\n');
  const bLines = b.toString('utf8').split('\n');
  let i = 0;
  while (i < aLines.length && aLines[i] === bLines[i]) i++;
  const clip = (line: string | undefined) =>
    line === undefined ? '(no line)' : line.slice(0, 200);
  throw new Error(
    `${actual} differs from ${expected} at line ${i + 1} ` +
      `(${a.length} vs ${b.length} bytes):\n` +
      `  ${clip(aLines[i])}\n  ${clip(bLines[i])}`,
  );
}

function expectLines(path: string, rows: number): void {
  const lines = readFileSync(path, 'utf8').split('\n').filter(Boolean).length;
  if (lines !== rows) {
    throw new Error(
      `${path} has ${lines} lines, expected one per input row (${rows})`,
    );
  }
}

function localRedis(url: string): Redis {
  return new Redis(url, {
    connectTimeout: 2000,
    commandTimeout: 2000,
    maxRetriesPerRequest: 1,
    retryStrategy: () => null,
    lazyConnect: true,
  });
}

/**
 * Returns whether a Redis at url replies to PING. Connecting and the command
 * each time out after two seconds.
 */
export async function redisAnswers(url: string): Promise<boolean> {
  const redis = localRedis(url);
  redis.on('error', () => {});
  try {
    await redis.connect();
    return (await redis.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    redis.disconnect();
  }
}

/** Deletes every key under prefix, with SCAN MATCH prefix:* and DEL. */
export async function deletePrefix(
  url: string,
  prefix: string,
): Promise<number> {
  const redis = localRedis(url);
  let deleted = 0;
  try {
    await redis.connect();
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(
        cursor,
        'MATCH',
        `${prefix}:*`,
        'COUNT',
        1000,
      );
      cursor = next;
      if (keys.length > 0) deleted += await redis.del(...keys);
    } while (cursor !== '0');
  } finally {
    redis.disconnect();
  }
  return deleted;
}

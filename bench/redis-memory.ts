/**
 * Measures the Redis memory of a run of about a million chunks on the real
 * queue path: `enqueueFile` on generated CSV files, then `runWorker` with a
 * pool that returns no entities in place of the model. Prints the bytes
 * under the bench's key prefix at several points. See bench/README.md.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

import { Redis } from 'ioredis';
import type { Logger } from 'pino';

import { configuredChunkLength, openQueue } from '../src/cli/queue-session.js';
import { createLogger } from '../src/cli/logger.js';
import { loadSettings, type Settings } from '../src/config/config.js';
import type { ExtractionPool } from '../src/engine/pool.js';
import type { Engine } from '../src/pipeline/engine.js';
import { enqueueFile, isJobOfRun } from '../src/producer/enqueue.js';
import { RunStore } from '../src/queue/run-store.js';
import { runWorker } from '../src/worker/worker.js';
import { deletePrefix } from './cli-runs.js';

const HELP = `Usage: node dist/bench/redis-memory.js [options]

Queues generated documents into one run in segments and drains each
segment with the real worker code and a pool that skips the model, then
prints the Redis memory under the bench's key prefix.

  --chunks N     chunks in the run, 8 per document (default 1000000)
  --segments N   CSV files enqueued one after another (default 10)
  --samples N    samples while each segment drains (default 4)
  -h, --help     show this help

Redis comes from REDIS_URL (default redis://127.0.0.1:6379) and must be on 127.0.0.1.
`;

/** Settings of one memory bench run, from the command line. */
interface MemoryOptions {
  /** Chunks in the run. @defaultValue 1000000 */
  chunks: number;
  /** CSV files the documents are split into. @defaultValue 10 */
  segments: number;
  /** Samples taken while each segment drains. @defaultValue 4 */
  samples: number;
  redisUrl: string;
}

// Each generated document has this many sentences. With the chunk length
// below, each sentence becomes one chunk.
const SENTENCES_PER_DOCUMENT = 8;
// Sentences are 17 to 32 characters, so no two fit in one chunk.
const CHUNK_CHARS = 32;
const RUN = 'memory';

/** Memory under the prefix at one point of the run. */
interface Sample {
  point: string;
  chunksQueued: number;
  chunksDone: number;
  keys: number;
  bytes: number;
  /** Job hashes, their locks and the queue's lists of job ids. */
  queueBytes: number;
  /** The BullMQ events stream. */
  eventsBytes: number;
  /** The run's documents, order and counters, and the set of runs. */
  recordBytes: number;
  /** Change of the server's used_memory since the start. */
  usedMemoryDelta: number;
}

function parseOptions(argv: string[]): MemoryOptions | undefined {
  const { values } = parseArgs({
    args: argv,
    options: {
      chunks: { type: 'string', default: '1000000' },
      segments: { type: 'string', default: '10' },
      samples: { type: 'string', default: '4' },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
  });
  if (values.help) return undefined;
  return {
    chunks: integer('--chunks', values.chunks, 8, 10_000_000),
    segments: integer('--segments', values.segments, 1, 1000),
    samples: integer('--samples', values.samples, 1, 100),
    redisUrl: localRedisUrl(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379'),
  };
}

function integer(name: string, raw: string, min: number, max: number): number {
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new RangeError(
      `${name}: expected an integer from ${min} to ${max}, got "${raw}"`,
    );
  }
  return value;
}

/** Returns url when its host is 127.0.0.1, so the bench never touches a remote Redis. */
function localRedisUrl(url: string): string {
  let host = '';
  try {
    host = new URL(url).hostname;
  } catch {
    // The URL may hold a password, so the message leaves it out.
    throw new TypeError(
      'REDIS_URL: expected a redis:// URL; got an invalid URL',
    );
  }
  if (host !== '127.0.0.1') {
    throw new RangeError(
      `REDIS_URL: the bench only uses a Redis on 127.0.0.1, got host "${host}"`,
    );
  }
  return url;
}

const PEOPLE = ['张伟', '李娜', '王芳', '刘洋', '陈静', '杨帆', '赵磊', '黄敏'];
const PLACES = ['北京', '上海', '广州', '深圳', '杭州', '成都', '武汉', '西安'];
const ORGS = ['大学', '人民医院', '市政府', '图书馆', '气象局', '科技公司'];
const ACTIONS = [
  '发表了讲话',
  '参加了会议',
  '介绍了新的研究成果',
  '接受了记者采访',
  '宣布了明年的计划',
  '会见了来访的代表团',
];

/** Returns a sentence of 17 to 32 characters, the same text for the same n. */
function sentence(n: number): string {
  const pick = <T>(list: T[], salt: number) =>
    list[Math.floor(n / salt) % list.length];
  const date = `${2000 + (n % 25)}年${1 + (n % 12)}月${1 + (n % 28)}日`;
  const text = `${date}${pick(PEOPLE, 1)}在${pick(PLACES, 7)}${pick(ORGS, 13)}${pick(ACTIONS, 29)}。`;
  const length = [...text].length;
  if (length < 17 || length > CHUNK_CHARS) {
    throw new RangeError(
      `generated sentence has ${length} characters: ${text}`,
    );
  }
  return text;
}

/** Writes documents [first, first + count) as a CSV with id and text columns. */
function writeSegment(path: string, first: number, count: number): void {
  const lines = ['id,text'];
  for (let d = first; d < first + count; d++) {
    let text = '';
    for (let s = 0; s < SENTENCES_PER_DOCUMENT; s++) {
      text += sentence(d * SENTENCES_PER_DOCUMENT + s);
    }
    lines.push(`d${d},${text}`);
  }
  writeFileSync(path, lines.join('\n') + '\n');
}

/**
 * Returns an engine whose pool returns no entities for every text. Every
 * other part of the worker runs as in `uie-batch work`.
 */
function engineWithoutModel(settings: Settings, chunkLength: number): Engine {
  const pool = {
    threads: settings.threads,
    queueSize: 0,
    run: async (task: { texts: string[] }) => task.texts.map(() => []),
    close: async () => {},
  };
  return {
    // The worker calls only these members of the pool.
    pool: pool as unknown as ExtractionPool,
    manifest: { name: 'none', version: '0' } as Engine['manifest'],
    untrained: () => [],
    chunkLength,
    settings,
  };
}

/** Sums MEMORY USAGE over every key under the prefix, by kind of key. */
async function measure(
  redis: Redis,
  settings: Settings,
  baseline: number,
): Promise<Omit<Sample, 'point' | 'chunksQueued' | 'chunksDone'>> {
  const queueBase = `${settings.prefix}:${settings.queue}:`;
  const sums = { keys: 0, queue: 0, events: 0, records: 0 };
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(
      cursor,
      'MATCH',
      `${settings.prefix}:*`,
      'COUNT',
      1000,
    );
    cursor = next;
    const pipeline = redis.pipeline();
    // SAMPLES 0 makes Redis size every element of hashes and sorted sets.
    for (const key of keys)
      pipeline.call('MEMORY', 'USAGE', key, 'SAMPLES', '0');
    const replies = (await pipeline.exec()) ?? [];
    keys.forEach((key, i) => {
      const bytes = Number(replies[i]?.[1] ?? 0);
      const rest = key.slice(queueBase.length);
      sums.keys++;
      if (rest.startsWith('uie:')) sums.records += bytes;
      else if (rest === 'events') sums.events += bytes;
      else sums.queue += bytes;
    });
  } while (cursor !== '0');
  const used = await usedMemory(redis);
  return {
    keys: sums.keys,
    bytes: sums.queue + sums.events + sums.records,
    queueBytes: sums.queue,
    eventsBytes: sums.events,
    recordBytes: sums.records,
    usedMemoryDelta: used - baseline,
  };
}

async function usedMemory(redis: Redis): Promise<number> {
  const info = await redis.info('memory');
  return Number(/^used_memory:(\d+)/m.exec(info)?.[1] ?? 0);
}

/** State shared by the steps of one bench run. */
interface Bench {
  options: MemoryOptions;
  settings: Settings;
  dir: string;
  probe: Redis;
  baseline: number;
  samples: Sample[];
  queued: number;
  log: Logger;
  interrupted: boolean;
}

async function sample(bench: Bench, point: string): Promise<void> {
  const store = new RunStore(
    bench.probe,
    bench.settings.prefix,
    bench.settings.queue,
    RUN,
  );
  const done = (await store.stats()).done ?? 0;
  const memory = await measure(bench.probe, bench.settings, bench.baseline);
  const row = {
    point,
    chunksQueued: bench.queued,
    chunksDone: done,
    ...memory,
  };
  bench.samples.push(row);
  progress(`${point}: ${formatRow(row)}`);
}

/** Enqueues one segment through the real producer code. */
async function enqueueSegment(
  bench: Bench,
  segment: number,
  documents: number,
): Promise<void> {
  const { settings, log } = bench;
  const first = segment * documents;
  const csv = join(bench.dir, `segment-${segment}.csv`);
  writeSegment(csv, first, documents);
  const { redis, queue, close } = await openQueue(settings, log, true);
  try {
    const store = new RunStore(redis, settings.prefix, settings.queue, RUN);
    const chunkLength = configuredChunkLength(settings);
    const summary = await enqueueFile(
      queue,
      store,
      csv,
      {},
      settings,
      chunkLength,
      log,
    );
    bench.queued += summary.chunks;
  } finally {
    await close();
    rmSync(csv, { force: true });
  }
}

/**
 * Marks the run for automatic export once its last segment is queued, as
 * `scan` does, so the worker that finishes it exports it and starts its
 * retention period.
 */
async function markForExport(bench: Bench): Promise<void> {
  const { settings } = bench;
  const store = new RunStore(bench.probe, settings.prefix, settings.queue, RUN);
  await store.setStat('autoExport', 1);
  await store.setStat('enqueuedAt', Date.now());
}

/** Drains the queue with the real worker and samples as chunks finish. */
async function drainSegment(
  bench: Bench,
  segment: number,
  segmentChunks: number,
): Promise<void> {
  const { settings, log } = bench;
  const { redis, queue, close } = await openQueue(settings, log, false);
  const engine = engineWithoutModel(settings, CHUNK_CHARS);
  const step = Math.max(1, Math.floor(segmentChunks / bench.options.samples));
  const start = bench.queued - segmentChunks;
  let next = start + step;
  let stopped = false;
  try {
    const worker = runWorker(
      engine,
      queue,
      redis,
      { exitWhenDrained: true },
      log,
    ).finally(() => (stopped = true));
    while (!stopped) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      const done = Number(await bench.probe.hget(statsKey(settings), 'done'));
      if (done < next || done >= bench.queued) continue;
      await sample(bench, `segment ${segment + 1} draining`);
      next = done + step;
    }
    const code = await worker;
    if (code !== 0) throw new Error(`worker stopped with exit code ${code}`);
  } finally {
    await close();
  }
}

function statsKey(settings: Settings): string {
  return `${settings.prefix}:${settings.queue}:uie:run:${RUN}:stats`;
}

async function measureRun(bench: Bench): Promise<void> {
  const { segments, chunks } = bench.options;
  const documents = Math.ceil(chunks / SENTENCES_PER_DOCUMENT / segments);
  await sample(bench, 'start');
  for (let s = 0; s < segments && !bench.interrupted; s++) {
    await enqueueSegment(bench, s, documents);
    if (s === segments - 1) await markForExport(bench);
    await sample(bench, `segment ${s + 1} queued`);
    const segmentChunks = documents * SENTENCES_PER_DOCUMENT;
    await drainSegment(bench, s, segmentChunks);
    await sample(bench, `segment ${s + 1} drained`);
  }
  await describeEnd(bench);
}

/**
 * Prints the length of the events stream and the TTL that the automatic
 * export gave the run's records.
 */
async function describeEnd(bench: Bench): Promise<void> {
  const { settings, probe } = bench;
  const events = `${settings.prefix}:${settings.queue}:events`;
  progress(`events stream: ${await probe.xlen(events)} entries`);
  const ttl = await probe.ttl(statsKey(settings));
  const store = new RunStore(probe, settings.prefix, settings.queue, RUN);
  const { exportedAt } = await store.stats();
  progress(
    exportedAt
      ? `run exported; its records expire in ${(ttl / 86_400).toFixed(2)} days`
      : 'run not exported',
  );
}

function mb(bytes: number): string {
  return (bytes / 1024 / 1024).toFixed(2);
}

function formatRow(s: Sample): string {
  const perChunk = s.chunksDone > 0 ? (s.bytes / s.chunksDone).toFixed(1) : '-';
  return [
    s.point,
    s.chunksQueued,
    s.chunksDone,
    s.keys,
    mb(s.bytes),
    mb(s.queueBytes),
    (s.eventsBytes / 1024).toFixed(0),
    mb(s.recordBytes),
    perChunk,
    mb(s.usedMemoryDelta),
  ].join(' | ');
}

function formatTable(samples: Sample[]): string {
  const header =
    '| point | chunks queued | chunks done | keys | MiB under prefix | ' +
    'jobs and lists MiB | events KiB | run records MiB | bytes per chunk done | ' +
    'used_memory change MiB |';
  const rule = '|' + ' --- |'.repeat(10);
  const rows = samples.map((s) => `| ${formatRow(s)} |`);
  const peak = samples.reduce((a, b) => (b.bytes > a.bytes ? b : a));
  return [
    header,
    rule,
    ...rows,
    '',
    `peak: ${mb(peak.bytes)} MiB under the prefix at "${peak.point}"`,
  ].join('\n');
}

function progress(message: string): void {
  process.stderr.write(`redis-memory: ${message}\n`);
}

/**
 * Returns the default settings with the bench's prefix, output folder and
 * chunk length. UIE_* variables are ignored so they cannot change what is
 * measured.
 */
function benchSettings(options: MemoryOptions, dir: string): Settings {
  return loadSettings(
    {
      redisUrl: options.redisUrl,
      prefix: `uie-bench-memory-${process.pid}`,
      outputDir: join(dir, 'results'),
      chunkChars: CHUNK_CHARS,
      chunkOverlap: 8,
      threads: 2,
      logLevel: 'warn',
    },
    {},
  );
}

async function main(argv: string[]): Promise<void> {
  const options = parseOptions(argv);
  if (!options) {
    process.stdout.write(HELP);
    return;
  }

  const dir = mkdtempSync(join(tmpdir(), 'uie-redis-memory-'));
  const settings = benchSettings(options, dir);
  const probe = new Redis(options.redisUrl);
  const bench: Bench = {
    options,
    settings,
    dir,
    probe,
    baseline: await usedMemory(probe),
    samples: [],
    queued: 0,
    log: createLogger(settings.logLevel, 'redis-memory'),
    interrupted: false,
  };

  // A signal ends the run after the segment in progress. During a drain,
  // runWorker also stops its worker on it.
  const onSignal = () => (bench.interrupted = true);
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    await measureRun(bench);
    process.stdout.write(formatTable(bench.samples) + '\n');
  } finally {
    probe.disconnect();
    rmSync(dir, { recursive: true, force: true });
    await deletePrefix(options.redisUrl, settings.prefix);
  }
}

main(process.argv.slice(2)).catch((err: unknown) => {
  process.stderr.write(
    `redis-memory failed: ${err instanceof Error ? err.message : String(err)}\n`,
  );
  process.exitCode = 1;
});

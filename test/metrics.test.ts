import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';

import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import pino from 'pino';

import {
  HealthCheck,
  type HealthReport,
  type HealthSources,
} from '../src/worker/metrics-health.js';
import {
  Counter,
  Gauge,
  Histogram,
  MetricsRegistry,
  formatValue,
} from '../src/worker/metrics-registry.js';
import {
  startMetricsServer,
  type MetricsServer,
} from '../src/worker/metrics-server.js';
import { WorkerMetrics } from '../src/worker/metrics.js';
import {
  BIN,
  deletePrefix,
  REDIS_URL,
  ROOT,
  runCli,
  tempDir,
  uniquePrefix,
} from './helpers.js';

const silent = pino({ level: 'silent' });

/** Returns the value of the sample line of series, or undefined. */
function sampleValue(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

function fakeQueue(getJobCounts: () => Promise<Record<string, number>>) {
  return { getJobCounts } as unknown as Queue;
}

describe('Counter', () => {
  it('renders labelled series', async () => {
    const registry = new MetricsRegistry();
    const counter = registry.register(
      new Counter('jobs_total', 'Jobs by status.', ['status']),
    );
    counter.inc({ status: 'done' }, 3);
    counter.inc({ status: 'failed' });
    assert.equal(
      await registry.render(),
      '# HELP jobs_total Jobs by status.\n' +
        '# TYPE jobs_total counter\n' +
        'jobs_total{status="done"} 3\n' +
        'jobs_total{status="failed"} 1\n',
    );
  });

  it('escapes help and label values', async () => {
    const registry = new MetricsRegistry();
    const counter = registry.register(
      new Counter('x_total', 'a \\ b\nc', ['path']),
    );
    counter.inc({ path: 'C:\\a "b"\nc' });
    const text = await registry.render();
    assert.match(text, /^# HELP x_total a \\\\ b\\nc\n/);
    assert.ok(text.includes('x_total{path="C:\\\\a \\"b\\"\\nc"} 1\n'), text);
  });

  it('shows a series at 0 after inc by 0', async () => {
    const registry = new MetricsRegistry();
    registry.register(new Counter('x_total', 'X.')).inc({}, 0);
    assert.equal(sampleValue(await registry.render(), 'x_total'), 0);
  });

  it('rejects a negative increment', () => {
    const counter = new Counter('x_total', 'X.');
    assert.throws(() => counter.inc({}, -1), {
      name: 'RangeError',
      message: 'x_total: expected an increment >= 0, got -1',
    });
  });

  it('rejects labels it was not given', () => {
    const counter = new Counter('x_total', 'X.', ['status']);
    assert.throws(() => counter.inc({ state: 'done' }), {
      name: 'RangeError',
      message: 'x_total: expected labels [status], got [state]',
    });
  });

  it('rejects an invalid metric name', () => {
    assert.throws(() => new Counter('2x', 'X.'), {
      name: 'RangeError',
      message:
        'metric name: expected letters, digits, "_" or ":", not starting with a digit, got "2x"',
    });
  });
});

describe('Histogram', () => {
  it('renders cumulative buckets, sum and count', async () => {
    const registry = new MetricsRegistry();
    const histogram = registry.register(
      new Histogram('run_seconds', 'Run time.', [0.1, 1, 10]),
    );
    for (const seconds of [0.05, 0.1, 0.5, 2, 20]) histogram.observe(seconds);
    assert.equal(
      await registry.render(),
      '# HELP run_seconds Run time.\n' +
        '# TYPE run_seconds histogram\n' +
        'run_seconds_bucket{le="0.1"} 2\n' +
        'run_seconds_bucket{le="1"} 3\n' +
        'run_seconds_bucket{le="10"} 4\n' +
        'run_seconds_bucket{le="+Inf"} 5\n' +
        'run_seconds_sum 22.65\n' +
        'run_seconds_count 5\n',
    );
  });

  it('renders zeros before any observation', async () => {
    const registry = new MetricsRegistry();
    registry.register(new Histogram('run_seconds', 'Run time.', [1]));
    const text = await registry.render();
    assert.equal(sampleValue(text, 'run_seconds_bucket{le="1"}'), 0);
    assert.equal(sampleValue(text, 'run_seconds_bucket{le="+Inf"}'), 0);
    assert.equal(sampleValue(text, 'run_seconds_sum'), 0);
    assert.equal(sampleValue(text, 'run_seconds_count'), 0);
  });

  it('rejects bounds that do not increase', () => {
    assert.throws(() => new Histogram('h', 'H.', [1, 1]), {
      name: 'RangeError',
      message: 'h: expected finite, increasing bucket bounds, got [1, 1]',
    });
  });
});

describe('MetricsRegistry', () => {
  it('leaves out a family whose source fails', async () => {
    const registry = new MetricsRegistry();
    registry.register(
      new Gauge('broken', 'Broken.', () => Promise.reject(new Error('down'))),
    );
    registry.register(new Gauge('threads', 'Threads.', () => [{ value: 2 }]));
    const errors: string[] = [];
    const text = await registry.render((name, err) =>
      errors.push(`${name}: ${(err as Error).message}`),
    );
    assert.equal(
      text,
      '# HELP threads Threads.\n# TYPE threads gauge\nthreads 2\n',
    );
    assert.deepEqual(errors, ['broken: down']);
  });

  it('rejects a second family with one name', () => {
    const registry = new MetricsRegistry();
    registry.register(new Counter('x_total', 'X.'));
    assert.throws(() => registry.register(new Counter('x_total', 'X.')), {
      name: 'RangeError',
      message: 'metric x_total is already registered',
    });
  });

  it('formats special values', () => {
    assert.equal(formatValue(Number.POSITIVE_INFINITY), '+Inf');
    assert.equal(formatValue(Number.NEGATIVE_INFINITY), '-Inf');
    assert.equal(formatValue(Number.NaN), 'NaN');
    assert.equal(formatValue(0.005), '0.005');
  });
});

describe('WorkerMetrics', () => {
  const pool = { threads: 2, queueSize: 5 };
  const counts = {
    waiting: 4,
    prioritized: 0,
    active: 2,
    delayed: 1,
    failed: 3,
  };

  it('renders every family with HELP and TYPE', async () => {
    const metrics = new WorkerMetrics({
      pool,
      queue: fakeQueue(async () => counts),
    });
    const text = await metrics.registry.render();
    const types = [...text.matchAll(/^# TYPE (\S+) (\S+)$/gm)].map(
      (m) => `${m[1]} ${m[2]}`,
    );
    assert.deepEqual(types, [
      'uie_batch_documents_total counter',
      'uie_batch_chunks_total counter',
      'uie_batch_jobs_total counter',
      'uie_batch_inference_seconds histogram',
      'uie_batch_queue_jobs gauge',
      'uie_batch_threads gauge',
      'uie_batch_pool_queue_size gauge',
    ]);
    for (const [name] of types.map((t) => t.split(' '))) {
      assert.match(text, new RegExp(`^# HELP ${name} \\S`, 'm'));
    }
    assert.equal(sampleValue(text, 'uie_batch_documents_total'), 0);
    assert.equal(sampleValue(text, 'uie_batch_chunks_total{status="done"}'), 0);
    assert.equal(sampleValue(text, 'uie_batch_jobs_total{status="failed"}'), 0);
    assert.equal(sampleValue(text, 'uie_batch_queue_jobs{state="waiting"}'), 4);
    assert.equal(sampleValue(text, 'uie_batch_queue_jobs{state="delayed"}'), 1);
    assert.equal(sampleValue(text, 'uie_batch_queue_jobs{state="failed"}'), 3);
    assert.equal(sampleValue(text, 'uie_batch_threads'), 2);
    assert.equal(sampleValue(text, 'uie_batch_pool_queue_size'), 5);
  });

  it('counts chunks and distinct documents', async () => {
    const metrics = new WorkerMetrics({
      pool,
      queue: fakeQueue(async () => counts),
    });
    metrics.countChunks('done', [{ id: 'a' }, { id: 'a' }, { id: 'b' }]);
    metrics.countChunks('failed', [{ id: 'c' }]);
    const text = await metrics.registry.render();
    assert.equal(sampleValue(text, 'uie_batch_chunks_total{status="done"}'), 3);
    assert.equal(
      sampleValue(text, 'uie_batch_chunks_total{status="failed"}'),
      1,
    );
    assert.equal(sampleValue(text, 'uie_batch_documents_total'), 3);
  });

  it('times runs that resolve and reject', async () => {
    const metrics = new WorkerMetrics({
      pool,
      queue: fakeQueue(async () => counts),
    });
    assert.equal(await metrics.timeInference(async () => 7), 7);
    await assert.rejects(
      metrics.timeInference(() => Promise.reject(new Error('thread died'))),
      { message: 'thread died' },
    );
    const text = await metrics.registry.render();
    assert.equal(sampleValue(text, 'uie_batch_inference_seconds_count'), 2);
    assert.equal(
      sampleValue(text, 'uie_batch_inference_seconds_bucket{le="+Inf"}'),
      2,
    );
    assert.equal(
      sampleValue(text, 'uie_batch_inference_seconds_bucket{le="10"}'),
      2,
    );
  });

  it('counts job events and records activity', async () => {
    const metrics = new WorkerMetrics({
      pool,
      queue: fakeQueue(async () => counts),
    });
    const worker = new EventEmitter();
    metrics.watch(worker as never);
    const before = metrics.lastActivity;
    await new Promise((r) => setTimeout(r, 5));
    worker.emit('active');
    assert.ok(metrics.lastActivity > before);
    worker.emit('completed');
    worker.emit('completed');
    worker.emit('failed');
    const text = await metrics.registry.render();
    assert.equal(
      sampleValue(text, 'uie_batch_jobs_total{status="completed"}'),
      2,
    );
    assert.equal(sampleValue(text, 'uie_batch_jobs_total{status="failed"}'), 1);
  });

  it('leaves out queue jobs when Redis hangs', async () => {
    const metrics = new WorkerMetrics({
      pool,
      queue: fakeQueue(() => new Promise(() => {})),
    });
    const errors: string[] = [];
    const text = await metrics.registry.render((name, err) =>
      errors.push(`${name}: ${(err as Error).message}`),
    );
    assert.equal(text.includes('uie_batch_queue_jobs'), false, text);
    assert.equal(sampleValue(text, 'uie_batch_threads'), 2);
    assert.deepEqual(errors, [
      'uie_batch_queue_jobs: reading queue job counts timed out after 1000 ms',
    ]);
  });
});

describe('HealthCheck', () => {
  /** Returns health sources that pass every check, with overrides. */
  function sources(overrides: Partial<HealthSources> = {}): HealthSources {
    return {
      worker: {
        closing: undefined,
        isRunning: () => true,
        isPaused: () => false,
      },
      ping: async () => 'PONG',
      waitingJobs: async () => 0,
      lastActivity: () => 0,
      stallSeconds: 5,
      now: () => 1000,
      ...overrides,
    };
  }

  it('reports ok when every check passes', async () => {
    assert.deepEqual(await new HealthCheck(sources()).check(), {
      status: 'ok',
      waitingJobs: 0,
      secondsSinceLastJob: 1,
    });
  });

  const failures: [string, Partial<HealthSources>, string][] = [
    [
      'a closing worker',
      {
        worker: {
          closing: Promise.resolve(),
          isRunning: () => true,
          isPaused: () => false,
        },
      },
      'worker is closing or closed',
    ],
    [
      'a worker that is not running',
      {
        worker: {
          closing: undefined,
          isRunning: () => false,
          isPaused: () => false,
        },
      },
      'worker is not running',
    ],
    [
      'a paused worker',
      {
        worker: {
          closing: undefined,
          isRunning: () => true,
          isPaused: () => true,
        },
      },
      'worker is paused',
    ],
    [
      'a failed PING',
      { ping: () => Promise.reject(new Error('Connection is closed.')) },
      'Redis PING failed: Connection is closed.',
    ],
    [
      'a PING without reply',
      { ping: () => new Promise(() => {}) },
      'Redis PING timed out after 1000 ms',
    ],
    [
      'a refused connection',
      {
        ping: () => new Promise(() => {}),
        connectionError: () => 'connect ECONNREFUSED 127.0.0.1:6379',
      },
      'Redis PING timed out after 1000 ms; last connection error: connect ECONNREFUSED 127.0.0.1:6379',
    ],
    [
      'failed job counts',
      { waitingJobs: () => Promise.reject(new Error('READONLY')) },
      'reading queue job counts failed: READONLY',
    ],
  ];
  for (const [name, overrides, reason] of failures) {
    it(`reports ${name}`, async () => {
      const report = await new HealthCheck(sources(overrides)).check();
      assert.equal(report.status, 'unavailable');
      assert.equal(report.reason, reason);
    });
  }

  describe('when jobs wait', () => {
    it('reports a stall only after stallSeconds', async () => {
      let now = 100_000;
      const health = new HealthCheck(
        sources({ waitingJobs: async () => 3, now: () => now }),
      );
      // The last job finished long ago, but the jobs were first seen now.
      assert.equal((await health.check()).status, 'ok');
      now += 5000;
      assert.equal((await health.check()).status, 'ok');
      now += 1000;
      assert.deepEqual(await health.check(), {
        status: 'unavailable',
        reason:
          'no job started or finished for 6 s while 3 jobs wait (limit 5 s)',
        waitingJobs: 3,
        secondsSinceLastJob: 106,
      });
    });

    it('stays ok while jobs start', async () => {
      let now = 100_000;
      const health = new HealthCheck(
        sources({
          waitingJobs: async () => 3,
          lastActivity: () => now - 1000,
          now: () => now,
        }),
      );
      for (let i = 0; i < 10; i++) {
        assert.equal((await health.check()).status, 'ok');
        now += 4000;
      }
    });

    it('restarts the stall clock when the queue empties', async () => {
      let now = 100_000;
      let waiting = 3;
      const health = new HealthCheck(
        sources({ waitingJobs: async () => waiting, now: () => now }),
      );
      await health.check();
      waiting = 0;
      now += 4000;
      await health.check();
      waiting = 3;
      now += 4000;
      assert.equal((await health.check()).status, 'ok');
    });
  });
});

describe('metrics server', () => {
  let server: MetricsServer;
  let base: string;
  let report: HealthReport;

  before(async () => {
    const registry = new MetricsRegistry();
    registry.register(new Gauge('up', 'Up.', () => [{ value: 1 }]));
    const health = { check: async () => report } as HealthCheck;
    server = await startMetricsServer(
      { host: '127.0.0.1', port: 0, registry, health },
      silent,
    );
    base = `http://127.0.0.1:${server.port}`;
  });

  after(() => server.close());

  it('serves /metrics in the text format', async () => {
    const res = await fetch(`${base}/metrics`);
    assert.equal(res.status, 200);
    assert.equal(
      res.headers.get('content-type'),
      'text/plain; version=0.0.4; charset=utf-8',
    );
    assert.equal(await res.text(), '# HELP up Up.\n# TYPE up gauge\nup 1\n');
  });

  it('serves /health as JSON', async () => {
    report = { status: 'ok', waitingJobs: 0, secondsSinceLastJob: 2 };
    const ok = await fetch(`${base}/health`);
    assert.equal(ok.status, 200);
    assert.match(ok.headers.get('content-type') ?? '', /^application\/json/);
    assert.deepEqual(await ok.json(), report);

    report = { status: 'unavailable', reason: 'worker is paused' };
    const down = await fetch(`${base}/health?verbose=1`);
    assert.equal(down.status, 503);
    assert.deepEqual(await down.json(), report);
  });

  it('returns 404 for other paths', async () => {
    const res = await fetch(`${base}/healthz`);
    assert.equal(res.status, 404);
    await res.text();
  });

  it('returns 405 for other methods', async () => {
    const res = await fetch(`${base}/metrics`, { method: 'POST' });
    assert.equal(res.status, 405);
    assert.equal(res.headers.get('allow'), 'GET, HEAD');
    await res.text();
  });

  it('rejects a port in use', async () => {
    const registry = new MetricsRegistry();
    const health = { check: async () => report } as HealthCheck;
    await assert.rejects(
      startMetricsServer(
        { host: '127.0.0.1', port: server.port, registry, health },
        silent,
      ),
      {
        message: new RegExp(
          `^cannot listen for metrics on 127\\.0\\.0\\.1:${server.port} \\(listen EADDRINUSE`,
        ),
      },
    );
  });
});

/** Returns a TCP port on 127.0.0.1 that was free a moment ago. */
async function freePort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as AddressInfo;
  await new Promise((resolve) => probe.close(resolve));
  return port;
}

/** Polls until check returns a value other than undefined, or fails. */
async function waitFor<T>(
  description: string,
  check: () => Promise<T | undefined>,
  timeoutMs = 60_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await check();
      if (value !== undefined) return value;
    } catch (err) {
      lastError = err;
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`timed out waiting for ${description}`, {
    cause: lastError,
  });
}

describe('when a worker serves metrics', () => {
  const prefix = uniquePrefix('metrics');
  const dir = tempDir('metrics');
  const csv = join(dir, 'docs.csv');
  let redis: Redis;
  let queue: Queue;
  let worker: ChildProcess | undefined;
  let stderr = '';
  let base = '';
  let env: Record<string, string> = {};

  const scrape = async () => (await fetch(`${base}/metrics`)).text();
  const health = async () => {
    const res = await fetch(`${base}/health`);
    return { status: res.status, body: (await res.json()) as HealthReport };
  };

  before(async () => {
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    env = {
      UIE_PREFIX: prefix,
      UIE_OUTPUT_DIR: join(dir, 'results'),
      UIE_CHUNKS_PER_JOB: '2',
      UIE_METRICS_PORT: String(port),
      UIE_METRICS_HOST: '127.0.0.1',
      UIE_HEALTH_STALL_SECONDS: '1',
    };
    writeFileSync(
      csv,
      'id,text\n' +
        'd1,张伟在北京大学读书。\n' +
        'd2,李娜去了上海。\n' +
        'd3,王芳在广州工作。\n' +
        'd4,刘洋昨天到了深圳。\n' +
        'd5,陈静住在南京。\n',
    );
    redis = new Redis(REDIS_URL);
    queue = new Queue('uie-batch', { connection: redis, prefix });
    worker = spawn(process.execPath, [BIN, 'work', '--threads', '1'], {
      env: { ...process.env, LOG_LEVEL: 'info', ...env },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    worker.stderr!.on('data', (d) => (stderr += d));
  });

  after(async () => {
    if (worker && worker.exitCode === null && worker.signalCode === null) {
      worker.kill('SIGKILL');
    }
    await queue.close();
    redis.disconnect();
    await deletePrefix(prefix);
  });

  it('counts finished chunks and jobs', async () => {
    const idle = await waitFor('/health', async () => health());
    assert.equal(idle.status, 200, JSON.stringify(idle.body));
    assert.match(stderr, /"msg":"metrics listening"/);

    const enqueued = await runCli(['enqueue', csv, '--run', 'r1'], env);
    assert.equal(enqueued.code, 0, enqueued.stderr);
    const match = /(\d+) documents, (\d+) chunks in (\d+) jobs/.exec(
      enqueued.stderr,
    );
    assert.ok(match, enqueued.stderr);
    const [documents, chunks, jobs] = match.slice(1).map(Number);
    // One chunk per document, so no document is split across jobs.
    assert.equal(chunks, documents);

    const text = await waitFor('all jobs to complete', async () => {
      const t = await scrape();
      const completed = sampleValue(
        t,
        'uie_batch_jobs_total{status="completed"}',
      );
      return completed === jobs ? t : undefined;
    });
    assert.equal(
      sampleValue(text, 'uie_batch_chunks_total{status="done"}'),
      chunks,
    );
    assert.equal(
      sampleValue(text, 'uie_batch_chunks_total{status="failed"}'),
      0,
    );
    assert.equal(sampleValue(text, 'uie_batch_jobs_total{status="failed"}'), 0);
    assert.equal(sampleValue(text, 'uie_batch_documents_total'), documents);
    assert.equal(sampleValue(text, 'uie_batch_inference_seconds_count'), jobs);
    assert.equal(
      sampleValue(text, 'uie_batch_inference_seconds_bucket{le="+Inf"}'),
      jobs,
    );
    assert.equal(sampleValue(text, 'uie_batch_queue_jobs{state="waiting"}'), 0);
    assert.equal(sampleValue(text, 'uie_batch_threads'), 1);

    const finished = await health();
    assert.equal(finished.status, 200, JSON.stringify(finished.body));
    assert.equal(finished.body.status, 'ok');
  });

  it('stays healthy while the queue is paused', async () => {
    await queue.pause();
    const enqueued = await runCli(['enqueue', csv, '--run', 'r2'], env);
    assert.equal(enqueued.code, 0, enqueued.stderr);
    // Past the 1 s stall limit, with every job of r2 held by the pause.
    await new Promise((r) => setTimeout(r, 2500));
    const paused = await health();
    assert.equal(paused.status, 200, JSON.stringify(paused.body));
    assert.equal(paused.body.waitingJobs, 0);
    await queue.resume();
  });

  it('closes the server when the worker stops', async () => {
    const exited = new Promise<number | null>((resolve) =>
      worker!.on('exit', (code) => resolve(code)),
    );
    worker!.kill('SIGTERM');
    assert.equal(await exited, 0, stderr);
    await assert.rejects(fetch(`${base}/health`));
  });

  it('reports 503 when its pool hangs', async () => {
    const port = await freePort();
    const hungBase = `http://127.0.0.1:${port}`;
    const hung = spawn(process.execPath, [BIN, 'work', '--threads', '1'], {
      env: {
        ...process.env,
        LOG_LEVEL: 'warn',
        ...env,
        UIE_METRICS_PORT: String(port),
        UIE_PLUGINS: `time,${join(ROOT, 'test/fixtures/crash-plugin.mjs')}`,
      },
      stdio: 'ignore',
    });
    try {
      const hangCsv = join(dir, 'hang.csv');
      const rows = [
        'h1,【卡死】张伟在北京。',
        'h2,李娜去了上海。',
        'h3,王芳在广州。',
      ];
      writeFileSync(hangCsv, ['id,text', ...rows].join('\n') + '\n');
      const enqueued = await runCli(['enqueue', hangCsv, '--run', 'r3'], {
        ...env,
        UIE_CHUNKS_PER_JOB: '1',
      });
      assert.equal(enqueued.code, 0, enqueued.stderr);

      const stalled = await waitFor(
        '/health to report a stall',
        async () => {
          const res = await fetch(`${hungBase}/health`);
          const body = (await res.json()) as HealthReport;
          return res.status === 503 ? body : undefined;
        },
        30_000,
      );
      assert.match(
        stalled.reason ?? '',
        /^no job started or finished for [\d.]+ s while \d+ jobs wait \(limit 1 s\)$/,
      );
    } finally {
      hung.kill('SIGKILL');
    }
  });
});

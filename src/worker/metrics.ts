import { performance } from 'node:perf_hooks';

import type { Queue, Worker } from 'bullmq';

import {
  Counter,
  Gauge,
  Histogram,
  MetricsRegistry,
  type Sample,
} from './metrics-registry.js';
import { withTimeout } from './metrics-health.js';

/** Upper bounds of the inference duration buckets, in seconds. */
export const INFERENCE_BUCKETS = [
  0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
];

/** Queue states reported by `uie_batch_queue_jobs`. */
export const QUEUE_STATES = [
  'waiting',
  'prioritized',
  'active',
  'delayed',
  'failed',
] as const;

/** How long a scrape waits for the queue's job counts, in milliseconds. */
export const SCRAPE_TIMEOUT_MS = 1000;

/** Sources the worker metrics read at scrape time. */
export interface MetricsSources {
  /** The extraction pool, for its thread count and task queue. */
  pool: { readonly threads: number; readonly queueSize: number };
  /** The BullMQ queue whose job counts are reported. */
  queue: Pick<Queue, 'getJobCounts'>;
}

/**
 * The Prometheus metrics of one worker process: counters the job processor
 * updates, and gauges read from the pool and the queue at scrape time.
 * It also records when the worker last started or finished a job, for the
 * health check.
 */
export class WorkerMetrics {
  readonly registry = new MetricsRegistry();
  private readonly documents: Counter;
  private readonly chunks: Counter;
  private readonly jobs: Counter;
  private readonly inference: Histogram;
  private lastJobActivity = Date.now();

  constructor(sources: MetricsSources) {
    const { registry } = this;
    this.documents = registry.register(
      new Counter(
        'uie_batch_documents_total',
        'Documents with chunks finished (done or failed for good), counted once per job that carried them, so a document split across jobs counts once per job.',
      ),
    );
    this.chunks = registry.register(
      new Counter(
        'uie_batch_chunks_total',
        'Chunks finished: done with results, or failed for good with an error line.',
        ['status'],
      ),
    );
    this.jobs = registry.register(
      new Counter(
        'uie_batch_jobs_total',
        'Job attempts, extraction and scan, that completed or failed; a failed attempt counts even when the job is retried.',
        ['status'],
      ),
    );
    this.inference = registry.register(
      new Histogram(
        'uie_batch_inference_seconds',
        "Duration of each pool run of a job's chunks, including the wait for a free thread.",
        INFERENCE_BUCKETS,
      ),
    );
    registry.register(
      new Gauge(
        'uie_batch_queue_jobs',
        'Jobs in the queue by state, read from Redis at scrape time.',
        () => readQueueJobs(sources.queue),
      ),
    );
    registry.register(
      new Gauge(
        'uie_batch_threads',
        'Pool threads, each with a loaded model.',
        () => [{ value: sources.pool.threads }],
      ),
    );
    registry.register(
      new Gauge(
        'uie_batch_pool_queue_size',
        'Pool tasks waiting for a free thread.',
        () => [{ value: sources.pool.queueSize }],
      ),
    );

    // Series at 0 tell a scraper the worker is up before its first job.
    this.documents.inc({}, 0);
    for (const status of ['done', 'failed']) this.chunks.inc({ status }, 0);
    for (const status of ['completed', 'failed']) this.jobs.inc({ status }, 0);
  }

  /** Counts finished chunks and the distinct documents they belong to. */
  countChunks(
    status: 'done' | 'failed',
    chunks: readonly { id: string }[],
  ): void {
    this.chunks.inc({ status }, chunks.length);
    this.documents.inc({}, new Set(chunks.map((c) => c.id)).size);
  }

  /** Times one pool run, whether it resolves or rejects. */
  async timeInference<T>(run: () => Promise<T>): Promise<T> {
    const started = performance.now();
    try {
      return await run();
    } finally {
      this.inference.observe((performance.now() - started) / 1000);
    }
  }

  /**
   * Counts the worker's completed and failed job attempts, and records the
   * time of every job start and finish.
   */
  watch(worker: Pick<Worker, 'on'>): void {
    const touch = () => (this.lastJobActivity = Date.now());
    worker.on('active', touch);
    worker.on('completed', () => {
      touch();
      this.jobs.inc({ status: 'completed' });
    });
    worker.on('failed', () => {
      touch();
      this.jobs.inc({ status: 'failed' });
    });
  }

  /** Time of the last job start or finish, or of construction, in epoch ms. */
  get lastActivity(): number {
    return this.lastJobActivity;
  }
}

async function readQueueJobs(
  queue: Pick<Queue, 'getJobCounts'>,
): Promise<Sample[]> {
  const counts = await withTimeout(
    queue.getJobCounts(...QUEUE_STATES),
    SCRAPE_TIMEOUT_MS,
    'reading queue job counts',
  );
  return QUEUE_STATES.map((state) => ({
    labels: { state },
    value: counts[state] ?? 0,
  }));
}

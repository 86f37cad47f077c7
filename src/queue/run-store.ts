import type { Redis } from 'ioredis';

import type { ChunkRange } from '../chunking/chunker.js';

/** The producer's record of one document of a run. */
export interface DocumentRecord {
  id: string;
  /** Input file and 1-based line, which tell a re-enqueue from a duplicate id. */
  file: string;
  line: number;
  /** Position in the run's output. */
  seq: number;
  chunks: number;
}

/** One queued piece of work: a chunk of a document. */
export interface QueuedChunk {
  id: string;
  /** Index of the chunk within its document. */
  k: number;
  range: ChunkRange;
  text: string;
}

/** Data of one BullMQ job. */
export interface JobData {
  run: string;
  schema: string[];
  chunks: QueuedChunk[];
}

const RUN_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;

/**
 * Checks a run name, which becomes part of Redis keys, job ids and a folder.
 *
 * @throws RangeError for a name that could escape the output folder
 */
export function checkRunName(run: string): string {
  if (!RUN_NAME.test(run) || run.includes('..')) {
    throw new RangeError(
      `run: expected 1 to 100 letters, digits, ".", "_" or "-", starting with a letter or digit, got ${JSON.stringify(run)}`,
    );
  }
  return run;
}

/**
 * Redis records of one run: document order, per-document chunk counts and
 * counters. Keys share BullMQ's prefix and queue name, so one prefix
 * isolates a deployment or a test.
 */
export class RunStore {
  private readonly base: string;

  constructor(
    private readonly redis: Redis,
    prefix: string,
    queue: string,
    readonly run: string,
  ) {
    this.base = `${prefix}:${queue}:uie:run:${checkRunName(run)}`;
  }

  private get docsKey() {
    return `${this.base}:docs`;
  }
  private get orderKey() {
    return `${this.base}:order`;
  }
  private get statsKey() {
    return `${this.base}:stats`;
  }
  private get runsKey() {
    return this.base.slice(0, this.base.lastIndexOf(':run:')) + ':runs';
  }

  /** Returns the stored records of these ids; missing ids map to undefined. */
  async lookup(ids: string[]): Promise<(DocumentRecord | undefined)[]> {
    if (ids.length === 0) return [];
    const raw = await this.redis.hmget(this.docsKey, ...ids);
    return raw.map((r) => (r ? (JSON.parse(r) as DocumentRecord) : undefined));
  }

  /** Reserves count consecutive output positions. */
  async reserveSeq(count: number): Promise<number> {
    const end = await this.redis.hincrby(this.statsKey, 'seq', count);
    return end - count;
  }

  /** Records documents whose jobs are queued, with their output positions. */
  async record(records: DocumentRecord[]): Promise<void> {
    if (records.length === 0) return;
    const multi = this.redis.multi();
    const fields: string[] = [];
    const order: (string | number)[] = [];
    let chunks = 0;
    for (const r of records) {
      fields.push(r.id, JSON.stringify(r));
      order.push(r.seq, r.id);
      chunks += r.chunks;
    }
    multi.hset(this.docsKey, ...fields);
    multi.zadd(this.orderKey, ...order);
    multi.hincrby(this.statsKey, 'documents', records.length);
    multi.hincrby(this.statsKey, 'chunks', chunks);
    multi.sadd(this.runsKey, this.run);
    await multi.exec();
  }

  /** Adds rejected-row and other counters. */
  async count(field: string, n: number): Promise<void> {
    if (n > 0) await this.redis.hincrby(this.statsKey, field, n);
  }

  /**
   * Counts chunks done, for progress only: a chunk retried after a killed
   * worker may count twice. The first call records when work started.
   */
  async countDone(chunks: number): Promise<void> {
    await this.redis
      .multi()
      .hsetnx(this.statsKey, 'startedAt', Date.now())
      .hincrby(this.statsKey, 'done', chunks)
      .hset(this.statsKey, 'updatedAt', Date.now())
      .exec();
  }

  /** Sets one stats field, such as a flag or a time in epoch milliseconds. */
  async setStat(field: string, value: number): Promise<void> {
    await this.redis.hset(this.statsKey, field, value);
  }

  /** Returns whether the run has any record: documents, counters or flags. */
  async exists(): Promise<boolean> {
    const [stats, listed] = await Promise.all([
      this.redis.exists(this.statsKey),
      this.redis.sismember(this.runsKey, this.run),
    ]);
    return stats === 1 || listed === 1;
  }

  /**
   * Reserves the run name for one producer before the run has any record,
   * so two producers that pick the same name cannot both fill it. The
   * reservation expires after ttlMs.
   *
   * @returns false when another producer reserved the name first
   */
  async reserveName(owner: string, ttlMs: number): Promise<boolean> {
    const reply = await this.redis.set(
      `${this.base}:reserved`,
      owner,
      'PX',
      ttlMs,
      'NX',
    );
    return reply === 'OK';
  }

  /** Drops the reservation taken by reserveName. */
  async releaseName(): Promise<void> {
    await this.redis.del(`${this.base}:reserved`);
  }

  /** Key of a run-wide lock, such as the one held while exporting. */
  lockKey(name: string): string {
    return `${this.base}:lock:${name}`;
  }

  /** Names of the runs recorded under this prefix and queue. */
  async runs(): Promise<string[]> {
    return (await this.redis.smembers(this.runsKey)).sort();
  }

  async stats(): Promise<Record<string, number>> {
    const raw = await this.redis.hgetall(this.statsKey);
    return Object.fromEntries(
      Object.entries(raw).map(([k, v]) => [k, Number(v)]),
    );
  }

  /** Yields the run's documents in output order, in pages. */
  async *documents(pageSize = 1000): AsyncGenerator<DocumentRecord> {
    for (let start = 0; ; start += pageSize) {
      const ids = await this.redis.zrange(
        this.orderKey,
        start,
        start + pageSize - 1,
      );
      if (ids.length === 0) return;
      for (const record of await this.lookup(ids)) {
        if (record) yield record;
      }
    }
  }

  /** Deletes every record of the run. */
  async clear(): Promise<void> {
    await this.redis.del(this.docsKey, this.orderKey, this.statsKey);
    await this.redis.srem(this.runsKey, this.run);
  }
}

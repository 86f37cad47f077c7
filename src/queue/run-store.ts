import { createHash, randomInt } from 'node:crypto';

import type { Redis } from 'ioredis';

import type { ChunkRange } from '../chunking/chunker.js';
import type { ChunkContext } from '../chunking/plan.js';
import { RedisLock } from './redis-lock.js';
import {
  ADD_REJECT_SCRIPT,
  CLEAR_FAILURES_SCRIPT,
  COUNT_DONE_SCRIPT,
  OPEN_GENERATION_SCRIPT,
  PRUNE_RUNS_SCRIPT,
  RECORD_FAILURES_SCRIPT,
} from './run-scripts.js';

/** The producer's record of one document of a run. */
export interface DocumentRecord {
  id: string;
  /** Input file and 1-based line, which tell a re-enqueue from a duplicate id. */
  file: string;
  line: number;
  /** Position in the run's output. */
  seq: number;
  chunks: number;
  /**
   * {@link textDigest} of the document's text, which distinguishes an
   * edited row from the row queued before. Records written before it existed lack it.
   */
  digest?: string;
}

/**
 * Returns the first 16 hex digits of the SHA-256 of a document's text: 64
 * bits, enough to tell an edited text from the one queued, at 16 bytes of
 * Redis memory per document.
 */
export function textDigest(text: string): string {
  return createHash('sha256').update(text).digest('hex').slice(0, 16);
}

/** One queued piece of work: a chunk of a document. */
export interface QueuedChunk {
  id: string;
  /** Index of the chunk within its document. */
  k: number;
  range: ChunkRange;
  text: string;
  /** Plugin context of a window; see {@link ChunkRange}. */
  context?: ChunkContext;
}

/**
 * A chunk that failed for good: on every attempt, in a rule plugin, or when
 * its result could not be written to a part file. The run keeps it in Redis, where the
 * worker can always write it, so that enqueuing the document's file again
 * can queue the chunk again.
 */
export interface ChunkFailure {
  id: string;
  k: number;
  range: ChunkRange;
  error: string;
  /** Id of the failed job. A later failure of the chunk has another one. */
  job: string;
}

/** A failure as {@link RunStore.failedChunks} read it from Redis. */
export interface StoredFailure extends ChunkFailure {
  /** The stored value, which {@link RunStore.clearFailures} compares. */
  stored: string;
}

/** Data of one BullMQ job. */
export interface JobData {
  run: string;
  /**
   * Generation of the run the job was queued into; see
   * {@link RunStore.openGeneration}. Absent for a run recorded before runs
   * had generations.
   */
  generation?: number;
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

/** `<prefix>:<queue>:uie`, the root of every key of the queue's runs. */
function rootKey(prefix: string, queue: string): string {
  return `${prefix}:${queue}:uie`;
}

function producersKey(root: string): string {
  return `${root}:producers`;
}

/**
 * Counts the producers that are queuing into any run of the queue now. A
 * producer that was killed counts until its lock's time-to-live runs out.
 */
export function countProducers(
  redis: Redis,
  prefix: string,
  queue: string,
): Promise<number> {
  return RedisLock.countLive(redis, producersKey(rootKey(prefix, queue)));
}

// Generations are drawn at random from 1 to this bound, exclusive, which
// crypto.randomInt allows and which fits 15 decimal digits.
const GENERATION_BOUND = 2 ** 48;

/**
 * Redis records of one run: document order, per-document chunk counts,
 * counters, the schema of its jobs, the file lines of rejected rows and the
 * chunks that failed for good. Keys share BullMQ's prefix and queue name,
 * so one prefix isolates a deployment or a test.
 *
 * Each instance of a run name has a generation, a random number stored with
 * its counters. `forget` deletes it with the other records, so a run queued
 * again under the same name gets a new one. Job ids, job data and part-file
 * names carry the generation, which keeps the jobs and results of a
 * forgotten run apart from those of the new run.
 */
export class RunStore {
  /** `<prefix>:<queue>:uie`, shared by the records of every run. */
  private readonly root: string;
  private readonly base: string;

  constructor(
    private readonly redis: Redis,
    readonly prefix: string,
    readonly queue: string,
    readonly run: string,
  ) {
    this.root = rootKey(prefix, queue);
    this.base = `${this.root}:run:${checkRunName(run)}`;
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
  private get rejectsKey() {
    return `${this.base}:rejects`;
  }
  private get schemaKey() {
    return `${this.base}:schema`;
  }
  private get failedKey() {
    return `${this.base}:failed`;
  }
  private get sourceKey() {
    return `${this.base}:archive`;
  }
  private get doneJobsKey() {
    return `${this.base}:done-jobs`;
  }
  private get runsKey() {
    return `${this.root}:runs`;
  }
  /** Keys that hold the run's records and expire together. */
  private get recordKeys() {
    return [
      this.docsKey,
      this.orderKey,
      this.statsKey,
      this.rejectsKey,
      this.schemaKey,
      this.failedKey,
      this.sourceKey,
      this.doneJobsKey,
    ];
  }
  private statsKeyOf(run: string) {
    return `${this.root}:run:${run}:stats`;
  }

  /** Returns the stored records of these ids; missing ids map to undefined. */
  async lookup(ids: string[]): Promise<(DocumentRecord | undefined)[]> {
    if (ids.length === 0) return [];
    const raw = await this.redis.hmget(this.docsKey, ...ids);
    return raw.map((r) => (r ? (JSON.parse(r) as DocumentRecord) : undefined));
  }

  /**
   * Returns the run's generation, creating one when the run has no records
   * yet. Call it before queuing the run's first jobs, whose ids carry it.
   *
   * @returns undefined for a run recorded before runs had generations
   */
  async openGeneration(): Promise<number | undefined> {
    const reply = (await this.redis.eval(
      OPEN_GENERATION_SCRIPT,
      2,
      this.statsKey,
      this.docsKey,
      randomInt(1, GENERATION_BOUND),
    )) as string | null;
    return reply === null ? undefined : Number(reply);
  }

  /**
   * Returns the generation of the run's current records, or undefined when
   * the run has none or was recorded before runs had generations.
   */
  async generation(): Promise<number | undefined> {
    const stored = await this.redis.hget(this.statsKey, 'generation');
    return stored === null ? undefined : Number(stored);
  }

  /**
   * Returns the schema stored by {@link storeSchema}, or undefined for a run
   * without one: a new run, or one recorded before runs stored their schema.
   */
  async schema(): Promise<string[] | undefined> {
    const stored = await this.redis.get(this.schemaKey);
    return stored === null ? undefined : (JSON.parse(stored) as string[]);
  }

  /**
   * Stores the schema of the run's jobs, unless the run has one stored.
   * Call it before queuing jobs, like {@link openGeneration}.
   *
   * @returns the run's schema after the call: the one given, or the one
   *   stored before
   */
  async storeSchema(schema: string[]): Promise<string[]> {
    const replies = await this.redis
      .multi()
      .set(this.schemaKey, JSON.stringify(schema), 'NX')
      .get(this.schemaKey)
      .exec();
    const [err, stored] = replies?.[1] ?? [];
    if (err) throw err;
    return JSON.parse(stored as string) as string[];
  }

  /** Reserves count consecutive output positions. */
  async reserveSeq(count: number): Promise<number> {
    const end = await this.redis.hincrby(this.statsKey, 'seq', count);
    return end - count;
  }

  /**
   * Records documents whose jobs are queued, with their output positions,
   * and the days the run's records are kept once it is exported. Documents
   * added to a run that was already exported make it unfinished again, so
   * its records stop expiring until the next export.
   */
  async record(
    records: DocumentRecord[],
    retentionDays: number,
  ): Promise<void> {
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
    multi.hset(this.statsKey, 'retentionDays', retentionDays);
    for (const key of this.recordKeys) multi.persist(key);
    multi.sadd(this.runsKey, this.run);
    await multi.exec();
  }

  /** Adds rejected-row and other counters. */
  async count(field: string, n: number): Promise<void> {
    if (n > 0) await this.redis.hincrby(this.statsKey, field, n);
  }

  /**
   * Returns whether a rejected row was already recorded for the run by
   * {@link addReject}.
   *
   * @param file - absolute path of the input file
   * @param row - the row's identity within the file, from the producer
   */
  async hasReject(file: string, row: string): Promise<boolean> {
    const field = rejectField(file, row);
    return (await this.redis.hexists(this.rejectsKey, field)) === 1;
  }

  /**
   * Records a rejected row of a file and counts it in the run's `rejected`
   * counter.
   *
   * @param file - absolute path of the input file
   * @param row - the row's identity within the file, from the producer
   */
  async addReject(file: string, row: string): Promise<void> {
    await this.redis.eval(
      ADD_REJECT_SCRIPT,
      2,
      this.rejectsKey,
      this.statsKey,
      rejectField(file, row),
    );
  }

  /**
   * Counts a job's chunks done, once per job id: a job that a second worker
   * ran again, after the first lost its lock, counts once. The run's
   * `startedAt` is the earliest start of a job counted, so the rate that
   * `status` shows includes the time of the first jobs. Nothing is counted
   * for a run whose records were deleted or expired, or whose generation is
   * not the job's.
   *
   * @param generation - the generation in the job's data
   * @param jobId - the job's id; without one, every call counts
   * @param startedAt - when the job became active, in ms since the epoch;
   *   now when not given
   */
  async countDone(
    chunks: number,
    generation?: number,
    jobId?: string,
    startedAt?: number,
  ): Promise<void> {
    const now = Date.now();
    await this.redis.eval(
      COUNT_DONE_SCRIPT,
      2,
      this.statsKey,
      this.doneJobsKey,
      chunks,
      now,
      generation ?? '',
      jobId ?? '',
      Math.min(startedAt ?? now, now),
    );
  }

  /**
   * Records chunks that failed for good and counts them in the run's
   * `failedChunks`, once per chunk. Like {@link countDone}, it records
   * nothing for a run whose records were deleted or expired, or whose
   * generation is not the job's.
   */
  async recordFailures(
    failures: ChunkFailure[],
    generation?: number,
  ): Promise<void> {
    if (failures.length === 0) return;
    const fields: string[] = [];
    for (const { id, k, range, error, job } of failures) {
      fields.push(failureField(id, k), JSON.stringify({ range, error, job }));
    }
    await this.redis.eval(
      RECORD_FAILURES_SCRIPT,
      2,
      this.statsKey,
      this.failedKey,
      Date.now(),
      generation ?? '',
      ...fields,
    );
  }

  /**
   * Returns the recorded failures of these documents' chunks, in the order
   * of the documents and then of their chunks.
   */
  async failedChunks(
    docs: Pick<DocumentRecord, 'id' | 'chunks'>[],
  ): Promise<StoredFailure[]> {
    const keys: { id: string; k: number }[] = [];
    for (const { id, chunks } of docs) {
      for (let k = 0; k < chunks; k++) keys.push({ id, k });
    }
    if (keys.length === 0) return [];
    const raw = await this.redis.hmget(
      this.failedKey,
      ...keys.map(({ id, k }) => failureField(id, k)),
    );
    const found: StoredFailure[] = [];
    raw.forEach((stored, i) => {
      if (stored === null) return;
      const value = JSON.parse(stored) as Omit<ChunkFailure, 'id' | 'k'>;
      found.push({ ...keys[i], ...value, stored });
    });
    return found;
  }

  /** Yields every recorded failure of the run, in no particular order. */
  async *failures(): AsyncGenerator<ChunkFailure> {
    let cursor = '0';
    do {
      const [next, page] = await this.redis.hscan(
        this.failedKey,
        cursor,
        'COUNT',
        1000,
      );
      cursor = next;
      for (let i = 0; i < page.length; i += 2) {
        const colon = page[i].indexOf(':');
        const value = JSON.parse(page[i + 1]) as Omit<ChunkFailure, 'id' | 'k'>;
        yield {
          id: page[i].slice(colon + 1),
          k: Number(page[i].slice(0, colon)),
          ...value,
        };
      }
    } while (cursor !== '0');
  }

  /**
   * Deletes failures read by {@link failedChunks} once their chunks are
   * queued again, and uncounts them. A failure that a worker recorded anew
   * since it was read stays. Makes the run's records persist, because the
   * run has unfinished chunks again.
   *
   * @returns the number of failures deleted
   */
  async clearFailures(failures: StoredFailure[]): Promise<number> {
    if (failures.length === 0) return 0;
    const pairs: string[] = [];
    for (const f of failures) pairs.push(failureField(f.id, f.k), f.stored);
    const others = this.recordKeys.filter(
      (key) => key !== this.statsKey && key !== this.failedKey,
    );
    return (await this.redis.eval(
      CLEAR_FAILURES_SCRIPT,
      2 + others.length,
      this.statsKey,
      this.failedKey,
      ...others,
      ...pairs,
    )) as number;
  }

  /**
   * Records the archive folder whose scan queued the run, by its key
   * (archiveKey in archive-store.ts).
   */
  async setArchive(key: string): Promise<void> {
    await this.redis.set(this.sourceKey, key);
  }

  /** Returns the key of the archive folder a scan run came from, or undefined for other runs. */
  async archive(): Promise<string | undefined> {
    return (await this.redis.get(this.sourceKey)) ?? undefined;
  }

  /** Sets one stats field, such as a flag or a time in epoch milliseconds. */
  async setStat(field: string, value: number): Promise<void> {
    await this.redis.hset(this.statsKey, field, value);
  }

  /**
   * Returns whether the run has any record: documents, counters or flags.
   * A name left in the set of runs after its records expired does not count.
   */
  async exists(): Promise<boolean> {
    return (await this.redis.exists(...this.recordKeys)) > 0;
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

  /**
   * Takes the run-wide lock `name`, or returns undefined when another
   * process holds it. See {@link RedisLock.acquire}.
   *
   * @param asProducer - also enter the lock in the queue's registry of
   *   producers, which draining workers read; see {@link countProducers}
   */
  lock(
    name: string,
    ttlMs: number,
    holder: string,
    asProducer = false,
  ): Promise<RedisLock | undefined> {
    const registry = asProducer ? producersKey(this.root) : undefined;
    return RedisLock.acquire(
      this.redis,
      this.lockKey(name),
      ttlMs,
      holder,
      registry,
    );
  }

  /** Returns the holder description of the run-wide lock `name`, if held. */
  lockHolder(name: string): Promise<string | undefined> {
    return RedisLock.holder(this.redis, this.lockKey(name));
  }

  /**
   * Names of the runs recorded under this prefix and queue. Runs whose
   * records have expired are dropped from the set of runs here.
   */
  async runs(): Promise<string[]> {
    const listed = await this.redis.smembers(this.runsKey);
    if (listed.length === 0) return [];
    const statsKeys = listed.map((run) => this.statsKeyOf(run));
    const live = (await this.redis.eval(
      PRUNE_RUNS_SCRIPT,
      1 + statsKeys.length,
      this.runsKey,
      ...statsKeys,
      ...listed,
    )) as string[];
    return live.sort();
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

  /**
   * Makes the records of an exported run expire after the retention stored
   * by {@link record}, or `defaultDays` for a run recorded without one. A
   * retention of 0 leaves the records in place.
   *
   * @returns the retention applied, in days
   */
  async expireAfterExport(defaultDays: number): Promise<number> {
    const stored = await this.redis.hget(this.statsKey, 'retentionDays');
    const days = stored === null ? defaultDays : Number(stored);
    if (!(days > 0)) return 0;
    const seconds = Math.round(days * 24 * 3600);
    const multi = this.redis.multi();
    for (const key of this.recordKeys) multi.expire(key, seconds);
    await multi.exec();
    return days;
  }

  /**
   * Deletes every record of the run: documents, order, counters with the
   * generation, schema, rejected rows, failed chunks, archive key and its
   * entry in the set of runs. Locks and name reservations expire on their own.
   */
  async clear(): Promise<void> {
    await this.redis
      .multi()
      .del(...this.recordKeys)
      .srem(this.runsKey, this.run)
      .exec();
  }
}

function rejectField(file: string, row: string): string {
  return `${row}:${file}`;
}

function failureField(id: string, k: number): string {
  return `${k}:${id}`;
}

import { randomInt } from 'node:crypto';

import type { Redis } from 'ioredis';

import type { ChunkRange } from '../chunking/chunker.js';
import { RedisLock } from './redis-lock.js';

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

// Adds ARGV[1] to counter ARGV[3] (done or failed chunks) only while the
// run's counters exist and belong to generation ARGV[4] ('' for a run
// recorded before runs had generations). A job that was active when its run
// was forgotten would otherwise create a counters hash that nothing lists or
// expires, or count toward a new run of the same name.
const COUNT_CHUNKS_SCRIPT = `
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if (redis.call('HGET', KEYS[1], 'generation') or '') ~= ARGV[4] then
  return 0
end
redis.call('HSETNX', KEYS[1], 'startedAt', ARGV[2])
redis.call('HINCRBY', KEYS[1], ARGV[3], ARGV[1])
redis.call('HSET', KEYS[1], 'updatedAt', ARGV[2])
return 1
`;

// KEYS[1] is the run's counters, KEYS[2] its documents. Returns the run's
// generation, first setting it to ARGV[1] when the run has no records yet.
// A run with documents but no generation was recorded before runs had
// generations. It keeps none, so its queued jobs and part files still match.
const OPEN_GENERATION_SCRIPT = `
local current = redis.call('HGET', KEYS[1], 'generation')
if current then return current end
if redis.call('EXISTS', KEYS[2]) == 1 then return false end
redis.call('HSET', KEYS[1], 'generation', ARGV[1])
return ARGV[1]
`;

// KEYS[1] is the run's rejected rows, KEYS[2] its counters. Records the
// rejected row ARGV[1] and counts it. The row takes the counters' expiry,
// so a reject added to an exported run expires with the other records.
const ADD_REJECT_SCRIPT = `
redis.call('HSET', KEYS[1], ARGV[1], 1)
redis.call('HINCRBY', KEYS[2], 'rejected', 1)
local ttl = redis.call('PTTL', KEYS[2])
if ttl > 0 then redis.call('PEXPIRE', KEYS[1], ttl) end
`;

// Generations are drawn at random from 1 to this bound, exclusive, which
// crypto.randomInt allows and which fits 15 decimal digits.
const GENERATION_BOUND = 2 ** 48;

// KEYS[1] is the set of runs, KEYS[1 + i] the counters of run ARGV[i].
// Removes the runs whose counters are gone and returns the others. Runs
// atomically, so a run recorded meanwhile is never removed.
const PRUNE_RUNS_SCRIPT = `
local live = {}
for i, run in ipairs(ARGV) do
  if redis.call('EXISTS', KEYS[i + 1]) == 1 then
    live[#live + 1] = run
  else
    redis.call('SREM', KEYS[1], run)
  end
end
return live
`;

/**
 * Redis records of one run: document order, per-document chunk counts,
 * counters, the schema of its jobs and the file lines of rejected rows.
 * Keys share BullMQ's prefix
 * and queue name, so one prefix isolates a deployment or a test.
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
    prefix: string,
    queue: string,
    readonly run: string,
  ) {
    this.root = `${prefix}:${queue}:uie`;
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
   * Returns whether a row rejected at this file and line was already
   * recorded for the run by {@link addReject}.
   *
   * @param file - absolute path of the input file
   */
  async hasReject(file: string, line: number): Promise<boolean> {
    const field = rejectField(file, line);
    return (await this.redis.hexists(this.rejectsKey, field)) === 1;
  }

  /**
   * Records the file and line of a rejected row and counts it in the run's
   * `rejected` counter.
   *
   * @param file - absolute path of the input file
   */
  async addReject(file: string, line: number): Promise<void> {
    await this.redis.eval(
      ADD_REJECT_SCRIPT,
      2,
      this.rejectsKey,
      this.statsKey,
      rejectField(file, line),
    );
  }

  /**
   * Counts chunks done, for progress only: a chunk retried after a killed
   * worker may count twice. The first call records when work started.
   * Nothing is counted for a run whose records were deleted or expired, or
   * whose generation is not the job's.
   *
   * @param generation - the generation in the job's data
   */
  async countDone(chunks: number, generation?: number): Promise<void> {
    await this.redis.eval(
      COUNT_CHUNKS_SCRIPT,
      1,
      this.statsKey,
      chunks,
      Date.now(),
      'done',
      generation ?? '',
    );
  }

  /**
   * Counts chunks that failed for good, like {@link countDone}: nothing is
   * counted for a run whose records were deleted or expired, or whose
   * generation is not the job's.
   */
  async countFailed(chunks: number, generation?: number): Promise<void> {
    await this.redis.eval(
      COUNT_CHUNKS_SCRIPT,
      1,
      this.statsKey,
      chunks,
      Date.now(),
      'failedChunks',
      generation ?? '',
    );
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
   */
  lock(
    name: string,
    ttlMs: number,
    holder: string,
  ): Promise<RedisLock | undefined> {
    return RedisLock.acquire(this.redis, this.lockKey(name), ttlMs, holder);
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
   * generation, schema, rejected rows and its entry in the set of runs. Locks and
   * name reservations expire on their own.
   */
  async clear(): Promise<void> {
    await this.redis
      .multi()
      .del(...this.recordKeys)
      .srem(this.runsKey, this.run)
      .exec();
  }
}

function rejectField(file: string, line: number): string {
  return `${line}:${file}`;
}

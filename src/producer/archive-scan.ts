import { appendFile, mkdir, rm, rmdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';

import type { Settings } from '../config/config.js';
import { exportIfDrained } from '../output/auto-export.js';
import { ArchiveStore, contentHash } from '../queue/archive-store.js';
import { RedisLock } from '../queue/redis-lock.js';
import { checkRunName, RunStore } from '../queue/run-store.js';
import {
  readArchiveDocuments,
  type ArchiveDocument,
  type ArchiveEvent,
} from './archive-source.js';
import type { RejectedRow } from './csv-source.js';
import { enqueueDocuments } from './enqueue.js';
import { tryLockRun } from './run-lock.js';

/** Counts reported by one scan pass. */
export interface ScanSummary {
  /** Absolute path of the archive folder. */
  archive: string;
  /** Documents read, not counting rejected rows and files. */
  seen: number;
  /** Documents whose id had no stored content hash. */
  new: number;
  /** Documents whose content hash differs from the stored one. */
  changed: number;
  unchanged: number;
  rejected: number;
  chunks: number;
  jobs: number;
  /** Run of the new and changed documents; absent when there were none. */
  run?: string;
  /**
   * Runs of earlier passes over this archive that died before they had
   * queued everything, which this pass marked as queued so that they are
   * exported.
   */
  finished: string[];
}

/** Options of one scan pass. */
export interface ScanOptions {
  /**
   * Name of the run to create; it must not exist yet.
   * @defaultValue `scan-YYYYMMDDTHHMMSSZ` from the start time in UTC, with
   *   `-2`, `-3`, ... appended when another pass took that name
   */
  run?: string;
}

// Documents compared with their stored hashes per Redis round trip.
const BATCH_DOCUMENTS = 500;
// Time-to-live of the archive lock in milliseconds; renewed while the pass
// runs, so it only matters when a scanning process dies.
const SCAN_LOCK_MS = 60_000;
// How long a run name stays reserved for the pass that picked it.
const RESERVE_MS = 24 * 3600 * 1000;
// Suffixes tried for the default run name before giving up.
const MAX_NAME_TRIES = 100;

/** A document with the content hash of its text. */
type HashedDocument = ArchiveDocument & { hash: string };

/**
 * Runs one scan pass over an archive folder: reads every document, compares
 * its content hash with the one stored for its id, and queues the new and
 * changed documents into a run of their own, marked for automatic export.
 * Hashes are stored only after their documents' jobs are queued, so a pass
 * that dies queues those documents again next time rather than losing them.
 * A pass that finds nothing new creates no run. One pass per archive runs
 * at a time, and it holds its run's producer lock, so no `enqueue` or
 * `forget` acts on the run while the pass fills it.
 *
 * @throws InputError when the archive folder cannot be read; RangeError
 *   when another pass of the same folder is running or no run name is free
 */
export async function scanArchive(
  queue: Queue,
  redis: Redis,
  dir: string,
  settings: Settings,
  chunkLength: number,
  log: Logger,
  options: ScanOptions = {},
): Promise<ScanSummary> {
  const archive = new ArchiveStore(redis, settings.prefix, settings.queue, dir);
  const lock = await RedisLock.acquire(redis, archive.lockKey, SCAN_LOCK_MS);
  if (!lock) {
    throw new RangeError(
      `another scan of ${archive.dir} is running (lock ${archive.lockKey}); try again when it has finished`,
    );
  }
  try {
    await archive.beginPass();
    const finished = await finishStrandedRuns(redis, archive, settings, log);
    const run = await reserveRun(redis, settings, options.run, lock.token);
    try {
      const summary = await scanInto(
        queue,
        redis,
        archive,
        run.store,
        run.lock,
        readArchiveDocuments(dir, log),
        settings,
        chunkLength,
        log,
      );
      await archive.endPass();
      return { ...summary, finished };
    } finally {
      await run.lock.release();
      await run.store.releaseName();
    }
  } finally {
    if (lock.isLost) {
      log.warn(
        { archive: archive.dir, lock: archive.lockKey },
        'archive lock expired during the pass; another pass may have run at the same time',
      );
    }
    await lock.release();
  }
}

async function scanInto(
  queue: Queue,
  redis: Redis,
  archive: ArchiveStore,
  store: RunStore,
  runLock: RedisLock,
  events: AsyncIterable<ArchiveEvent>,
  settings: Settings,
  chunkLength: number,
  log: Logger,
): Promise<Omit<ScanSummary, 'finished'>> {
  const summary: Omit<ScanSummary, 'finished'> = {
    archive: archive.dir,
    seen: 0,
    new: 0,
    changed: 0,
    unchanged: 0,
    rejected: 0,
    chunks: 0,
    jobs: 0,
  };
  const rejects = new RejectsFile(settings.outputDir, store.run, log);
  const changes = changedDocuments(events, archive, store, summary, rejects);
  const queued = await enqueueDocuments(
    queue,
    store,
    changes,
    settings,
    chunkLength,
    log,
    {
      lock: runLock,
      onReject: (row) => rejects.add(row),
      onQueued: (docs) => archive.storeHashes(docs),
    },
  );
  summary.rejected = rejects.count;
  summary.chunks = queued.chunks;
  summary.jobs = queued.jobs;

  if (queued.documents === 0) {
    await rejects.discard();
    return summary;
  }
  summary.run = store.run;
  await store.count('rejected', rejects.count);
  // Workers export the run only after this mark, so they cannot export it
  // while later batches are still being queued.
  await store.setStat('enqueuedAt', Date.now());
  // Workers may have finished every chunk before the mark was set; then no
  // worker is left to export the run, so the scan does it.
  await exportIfDrained(redis, store, settings.outputDir, log);
  return summary;
}

/**
 * Passes on the documents that are new or changed since the last pass,
 * counting every document, and records rejected rows and repeated ids.
 */
async function* changedDocuments(
  events: AsyncIterable<ArchiveEvent>,
  archive: ArchiveStore,
  store: RunStore,
  summary: Omit<ScanSummary, 'finished'>,
  rejects: RejectsFile,
): AsyncGenerator<{ type: 'document'; document: HashedDocument }> {
  let batch: ArchiveDocument[] = [];
  let marked = false;
  const classify = async function* () {
    const docs = batch;
    batch = [];
    for (const doc of await compareBatch(docs, archive, summary, rejects)) {
      if (!marked) {
        // Set before the first job is queued, so that whichever worker
        // finishes the run's last chunk finds the flag and the archive.
        await store.setArchive(archive.key);
        await store.setStat('autoExport', 1);
        marked = true;
      }
      yield { type: 'document' as const, document: doc };
    }
  };

  for await (const event of events) {
    if (event.type === 'reject') {
      await rejects.add(event.reject);
      continue;
    }
    batch.push(event.document);
    if (batch.length >= BATCH_DOCUMENTS) yield* classify();
  }
  yield* classify();
}

/** Returns the new and changed documents of a batch and counts the rest. */
async function compareBatch(
  docs: ArchiveDocument[],
  archive: ArchiveStore,
  summary: Omit<ScanSummary, 'finished'>,
  rejects: RejectsFile,
): Promise<HashedDocument[]> {
  const repeatedAt = await archive.markSeen(docs);
  const stored = await archive.hashes(docs.map((d) => d.id));
  const out: HashedDocument[] = [];
  for (let i = 0; i < docs.length; i++) {
    const doc = docs[i];
    const firstLine = repeatedAt[i];
    if (firstLine !== undefined) {
      // Without this, two rows with one id would replace each other's
      // stored hash and be queued again on every pass.
      await rejects.add({
        file: doc.source,
        line: doc.line,
        id: doc.id,
        reason: `duplicate id; first seen at line ${firstLine}`,
      });
      continue;
    }
    summary.seen++;
    const hash = contentHash(doc.text);
    if (stored[i] === hash) {
      summary.unchanged++;
      continue;
    }
    if (stored[i] === undefined) summary.new++;
    else summary.changed++;
    out.push({ ...doc, hash });
  }
  return out;
}

/**
 * Marks as queued the runs of earlier passes over this archive that died
 * after they queued some documents and stored their hashes, but before the
 * enqueuedAt mark. Without the mark no worker exports such a run, and the
 * next passes count its documents as unchanged, so their results would be
 * in no results file. The documents the dead pass had not queued have no
 * stored hash, so this pass queues them into its own run. A run whose
 * producer lock is still held belongs to a pass that is still running.
 *
 * @returns the runs marked, in name order
 */
async function finishStrandedRuns(
  redis: Redis,
  archive: ArchiveStore,
  settings: Settings,
  log: Logger,
): Promise<string[]> {
  const open = (run: string) =>
    new RunStore(redis, settings.prefix, settings.queue, run);
  const finished: string[] = [];
  // runs() lists every run of the prefix and queue, whatever run the store is for.
  for (const run of await open('list').runs()) {
    const store = open(run);
    if ((await store.archive()) !== archive.key) continue;
    const stats = await store.stats();
    if (!stats.autoExport || stats.enqueuedAt) continue;
    const lock = await tryLockRun(store);
    if (!lock) continue;
    try {
      await store.setStat('enqueuedAt', Date.now());
      log.warn(
        { run, archive: archive.dir, documents: stats.documents ?? 0 },
        'an earlier scan pass stopped before it had queued all its documents; ' +
          'its run is exported when the workers have finished it, and this pass queues the rest',
      );
      await exportIfDrained(redis, store, settings.outputDir, log);
    } finally {
      await lock.release();
    }
    finished.push(run);
  }
  return finished;
}

/** A run reserved for one scan pass, with its producer lock. */
interface ReservedRun {
  store: RunStore;
  lock: RedisLock;
}

/**
 * Reserves the run for this pass and takes its producer lock. A name given
 * by the user must be unused; the default name gets a numeric suffix when
 * another pass took it.
 */
async function reserveRun(
  redis: Redis,
  settings: Settings,
  requested: string | undefined,
  owner: string,
): Promise<ReservedRun> {
  const open = (run: string) =>
    new RunStore(redis, settings.prefix, settings.queue, run);
  if (requested !== undefined) {
    const store = open(checkRunName(requested));
    const lock = await claimRun(store, owner);
    if (lock) return { store, lock };
    throw new RangeError(
      `run ${requested} already exists; a scan queues into a new run. Pass another --run or leave it out`,
    );
  }
  const base = defaultRunName(new Date());
  for (let n = 1; n <= MAX_NAME_TRIES; n++) {
    const store = open(n === 1 ? base : `${base}-${n}`);
    const lock = await claimRun(store, owner);
    if (lock) return { store, lock };
  }
  throw new RangeError(
    `runs ${base} to ${base}-${MAX_NAME_TRIES} all exist; pass --run with an unused name`,
  );
}

/**
 * Reserves a run name and takes the run's producer lock. Returns undefined,
 * holding neither, when the run exists or another producer holds the name
 * or the lock, such as an `enqueue` that has not recorded anything yet.
 */
async function claimRun(
  store: RunStore,
  owner: string,
): Promise<RedisLock | undefined> {
  if (!(await store.reserveName(owner, RESERVE_MS))) return undefined;
  const lock = await tryLockRun(store);
  if (lock && !(await store.exists())) return lock;
  await lock?.release();
  await store.releaseName();
  return undefined;
}

/** Returns `scan-YYYYMMDDTHHMMSSZ` for a time, in UTC. */
export function defaultRunName(time: Date): string {
  const stamp = time
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z');
  return `scan-${stamp}`;
}

/**
 * Rejected rows of a pass: logged, counted and appended to
 * `<outputDir>/<run>/rejects.jsonl`. The file is created on the first
 * reject and deleted again, with its folder, when the pass creates no run.
 */
class RejectsFile {
  count = 0;
  private readonly dir: string;
  private readonly path: string;
  private created: Promise<{ dir: boolean; file: boolean }> | undefined;

  constructor(
    outputDir: string,
    run: string,
    private readonly log: Logger,
  ) {
    this.dir = join(outputDir, run);
    this.path = join(this.dir, 'rejects.jsonl');
  }

  async add(row: RejectedRow): Promise<void> {
    this.count++;
    this.log.warn(
      { file: row.file, line: row.line, id: row.id, reason: row.reason },
      'row rejected',
    );
    this.created ??= this.create();
    await this.created;
    await appendFile(this.path, JSON.stringify(row) + '\n');
  }

  /** Deletes the file and folder if this pass created them. */
  async discard(): Promise<void> {
    if (!this.created) return;
    const created = await this.created;
    if (created.file) await rm(this.path, { force: true });
    if (created.dir) await rmdir(this.dir);
  }

  private async create(): Promise<{ dir: boolean; file: boolean }> {
    const dir = (await mkdir(this.dir, { recursive: true })) !== undefined;
    try {
      await writeFile(this.path, '', { flag: 'wx' });
      return { dir, file: true };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      return { dir, file: false };
    }
  }
}

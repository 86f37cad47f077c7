import { mkdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';

import type { Redis } from 'ioredis';
import type { Logger } from 'pino';

import { RunNotFinishedError } from '../errors/errors.js';
import { releaseDocuments } from '../queue/archive-store.js';
import { RedisLock } from '../queue/redis-lock.js';
import type { RunStore } from '../queue/run-store.js';
import { exportRun } from './export-run.js';

// Time-to-live of the export lock in milliseconds. The holder renews it
// every third of this while it writes, so it only matters after a crash.
const EXPORT_LOCK_MS = 60_000;

/** Path of a run's automatic export: `<outputDir>/<run>.jsonl`. */
export function autoExportPath(outputDir: string, run: string): string {
  return join(outputDir, `${run}.jsonl`);
}

/**
 * Returns whether a run's stats show it is ready for its automatic export.
 * That needs the autoExport flag and the enqueuedAt mark, no exportedAt
 * mark, and done plus failed chunks at least equal to its chunks. The done
 * count is kept once per job, but the part files still decide.
 */
export function looksDrained(stats: Record<string, number>): boolean {
  if (!stats.autoExport || !stats.enqueuedAt || stats.exportedAt) return false;
  const finished = (stats.done ?? 0) + (stats.failedChunks ?? 0);
  return finished >= (stats.chunks ?? 0);
}

/**
 * Exports a run marked for automatic export to `<outputDir>/<run>.jsonl`
 * once every chunk of every document has a result in the part files. One
 * process at a time exports, under a Redis lock. It writes a temporary file
 * beside the output and renames it, so readers never see a partial file.
 * The run's Redis records then expire after the runRetentionDays recorded
 * when the run was queued.
 *
 * @returns the output path when this call wrote it, else undefined
 */
export async function exportIfDrained(
  redis: Redis,
  store: RunStore,
  outputDir: string,
  log: Logger,
): Promise<string | undefined> {
  if (!looksDrained(await store.stats())) return undefined;
  const lock = await RedisLock.acquire(
    redis,
    store.lockKey('export'),
    EXPORT_LOCK_MS,
  );
  if (!lock) return undefined;
  try {
    // The previous holder of the lock may have exported the run meanwhile.
    if (!looksDrained(await store.stats())) return undefined;
    return await exportToFile(redis, store, outputDir, lock.token, log);
  } finally {
    await lock.release();
  }
}

async function exportToFile(
  redis: Redis,
  store: RunStore,
  outputDir: string,
  token: string,
  log: Logger,
): Promise<string | undefined> {
  const output = autoExportPath(outputDir, store.run);
  const temp = join(outputDir, `.${store.run}.jsonl.${token}.tmp`);
  await mkdir(outputDir, { recursive: true });
  const failed: { id: string; digest?: string }[] = [];
  let summary;
  try {
    summary = await exportRun(store, outputDir, temp, false, log, (doc) =>
      failed.push(doc),
    );
  } catch (err) {
    await rm(temp, { force: true });
    if (!(err instanceof RunNotFinishedError)) throw err;
    log.debug({ run: store.run }, 'run not finished; export postponed');
    return undefined;
  }
  await rename(temp, output);
  // The next pass over the archive queues the failed documents again,
  // which retries them once their cause is fixed.
  const archive = failed.length > 0 ? await store.archive() : undefined;
  if (archive !== undefined) {
    const released = await releaseDocuments(
      redis,
      store.prefix,
      store.queue,
      archive,
      failed,
    );
    log.info(
      { run: store.run, documents: released },
      'failed documents will be queued again by the next scan of the archive',
    );
  }
  await store.setStat('exportedAt', Date.now());
  // A run queued before runRetentionDays existed has no recorded retention,
  // so it keeps its records as it did before.
  const retentionDays = await store.expireAfterExport(0);
  log.info(
    { run: store.run, output, retentionDays, ...summary },
    'run exported',
  );
  return output;
}

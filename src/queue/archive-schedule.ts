import { resolve } from 'node:path';

import type { Queue } from 'bullmq';

import { archiveKey } from './archive-store.js';
import { loadBullmq } from './load-packages.js';

/** Name of the jobs that run one scan pass of an archive folder. */
export const SCAN_JOB = 'scan';

/** Data of a scan job. */
export interface ScanJobData {
  /** Absolute path of the archive folder, as the workers see it. */
  archive: string;
}

/** When a scheduled scan runs. */
export interface ScanSchedule {
  /** Cron pattern with five or six fields, such as `0 2 * * *`. */
  pattern: string;
  /** IANA time zone the pattern is read in, such as `Asia/Shanghai`. */
  tz: string;
}

/** Id of the job scheduler of an archive folder, derived from its path. */
export function scanSchedulerId(dir: string): string {
  return `archive-scan-${archiveKey(dir)}`;
}

/**
 * Checks a schedule and returns the next time it fires, in epoch
 * milliseconds.
 *
 * @throws RangeError naming --tz or --cron and the value received
 */
export function nextScanTime(schedule: ScanSchedule, now = Date.now()): number {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: schedule.tz });
  } catch {
    throw new RangeError(
      `--tz: expected an IANA time zone such as UTC or Asia/Shanghai, got ${JSON.stringify(schedule.tz)}`,
    );
  }
  const { getNextMillis } = loadBullmq();
  let next: number | undefined;
  try {
    next = getNextMillis(now, { pattern: schedule.pattern, tz: schedule.tz });
  } catch (err) {
    throw new RangeError(
      `--cron: invalid cron pattern ${JSON.stringify(schedule.pattern)} (${(err as Error).message}); expected five fields such as "0 2 * * *", or six with seconds first`,
    );
  }
  if (next === undefined) {
    throw new RangeError(
      `--cron: pattern ${JSON.stringify(schedule.pattern)} never fires after now`,
    );
  }
  return next;
}

/**
 * Registers or replaces the job scheduler that adds a scan job for an
 * archive folder on a cron schedule. The scheduler id comes from the
 * folder's absolute path, so registering the same folder again, from any
 * number of processes, leaves one scheduler with the last schedule given.
 *
 * @param attempts - attempts per scan job; a failed pass is retried after
 *   one minute, then two, and so on
 * @returns the scheduler id and the next time it fires
 */
export async function scheduleArchiveScan(
  queue: Queue,
  dir: string,
  schedule: ScanSchedule,
  attempts: number,
): Promise<{ id: string; next: number }> {
  const next = nextScanTime(schedule);
  const id = scanSchedulerId(dir);
  const data: ScanJobData = { archive: resolve(dir) };
  await queue.upsertJobScheduler(
    id,
    { pattern: schedule.pattern, tz: schedule.tz },
    {
      name: SCAN_JOB,
      data,
      opts: {
        attempts,
        backoff: { type: 'exponential', delay: 60_000 },
        removeOnComplete: { age: 7 * 24 * 3600, count: 100 },
        removeOnFail: { age: 30 * 24 * 3600 },
      },
    },
  );
  return { id, next };
}

/**
 * Removes the job scheduler of an archive folder.
 *
 * @returns the scheduler id, and whether a scheduler was found
 */
export async function unscheduleArchiveScan(
  queue: Queue,
  dir: string,
): Promise<{ id: string; removed: boolean }> {
  const id = scanSchedulerId(dir);
  return { id, removed: await queue.removeJobScheduler(id) };
}

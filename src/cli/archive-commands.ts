import { stat } from 'node:fs/promises';
import { resolve } from 'node:path';

import type { Logger } from 'pino';

import { redactUrl, type Settings } from '../config/config.js';
import { InputError } from '../errors/errors.js';
import { autoExportPath } from '../output/auto-export.js';
import { scanArchive, type ScanSummary } from '../producer/archive-scan.js';
import {
  scheduleArchiveScan,
  unscheduleArchiveScan,
} from '../queue/archive-schedule.js';
import { requiredOption, type Invocation } from './main.js';
import { configuredChunkLength, openQueue } from './queue-session.js';

export async function scan(
  inv: Invocation,
  settings: Settings,
  log: Logger,
): Promise<number> {
  const dir = requiredOption(inv, 'archive');
  const run = typeof inv.values.run === 'string' ? inv.values.run : undefined;
  const chunkLength = configuredChunkLength(settings);
  const { redis, queue, close } = await openQueue(settings, log, true, true);
  try {
    log.info(
      {
        redis: redactUrl(settings.redisUrl),
        queue: settings.queue,
        archive: resolve(dir),
      },
      'scan started',
    );
    const summary = await scanArchive(
      queue,
      redis,
      dir,
      settings,
      chunkLength,
      log,
      { run },
    );
    log.info({ ...summary }, 'scan finished');
    process.stderr.write(describeScan(summary, settings.outputDir) + '\n');
    return 0;
  } finally {
    await close();
  }
}

/** One-line report of a scan pass, as `scan` prints it. */
export function describeScan(summary: ScanSummary, outputDir: string): string {
  const counts =
    `archive ${summary.archive}: ${summary.seen} documents seen, ` +
    `${summary.new} new, ${summary.changed} changed, ` +
    `${summary.unchanged} unchanged, ${summary.rejected} rejected`;
  const finished = summary.finished.map(
    (run) =>
      `; run ${run} of an earlier pass that stopped early is now marked as queued, ` +
      `exported to ${autoExportPath(outputDir, run)} when the workers finish it`,
  );
  if (!summary.run) {
    return `${counts}; nothing changed, no run created${finished.join('')}`;
  }
  return (
    `${counts}; ${summary.new + summary.changed} documents ` +
    `(${summary.chunks} chunks in ${summary.jobs} jobs) queued into run ${summary.run}, ` +
    `exported to ${autoExportPath(outputDir, summary.run)} when the workers finish it` +
    finished.join('')
  );
}

export async function schedule(
  inv: Invocation,
  settings: Settings,
  log: Logger,
): Promise<number> {
  const dir = resolve(requiredOption(inv, 'archive'));
  const remove = Boolean(inv.values.remove);
  if (
    remove &&
    (inv.values.cron !== undefined || inv.values.tz !== undefined)
  ) {
    throw new RangeError(
      'schedule: --remove takes only --archive; drop --cron and --tz',
    );
  }
  const pattern = remove ? '' : requiredOption(inv, 'cron');
  const tz = typeof inv.values.tz === 'string' ? inv.values.tz : 'UTC';
  if (!remove) await checkFolder(dir);

  const { queue, close } = await openQueue(settings, log, true);
  try {
    if (remove) {
      const { id, removed } = await unscheduleArchiveScan(queue, dir);
      log.info({ scheduler: id, archive: dir, removed }, 'scheduler removed');
      process.stderr.write(
        removed
          ? `scheduler ${id} of ${dir} removed\n`
          : `no scheduler for ${dir} (id ${id}); nothing removed\n`,
      );
      return 0;
    }
    const { id, next } = await scheduleArchiveScan(
      queue,
      dir,
      { pattern, tz },
      settings.attempts,
    );
    const nextRun = new Date(next).toISOString();
    log.info(
      { scheduler: id, archive: dir, pattern, tz, next: nextRun },
      'scheduler registered',
    );
    process.stderr.write(
      `scheduler ${id}: scan ${dir} at "${pattern}" in time zone ${tz}; next scan ${nextRun}\n`,
    );
    return 0;
  } finally {
    await close();
  }
}

async function checkFolder(dir: string): Promise<void> {
  let isFolder = false;
  try {
    isFolder = (await stat(dir)).isDirectory();
  } catch (err) {
    throw new InputError(
      `archive folder ${dir} not found: ${(err as Error).message}. Pass the path the workers see`,
      { cause: err },
    );
  }
  if (!isFolder) throw new InputError(`archive ${dir} is not a folder`);
}

import { realpathSync } from 'node:fs';
import { dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';

import type { Logger } from 'pino';

import { envName, type Settings } from '../config/config.js';
import { InputError } from '../errors/errors.js';
import { exportRun } from '../output/export-run.js';
import {
  resolveOutputTarget,
  wroteTo,
  type OutputTarget,
} from '../output/output-file.js';
import { listPartFiles, partsDir } from '../output/part-files.js';
import { checkRedis, connectRedis } from '../queue/connection.js';
import { checkRunName, RunStore } from '../queue/run-store.js';
import { exitOnInterrupt } from './interrupts.js';
import { outputName, requiredOption, type Invocation } from './main.js';

// export talks to Redis through ioredis alone; it imports nothing of BullMQ,
// whose loading takes about 0.1 s more of every start.

export async function exportCommand(
  inv: Invocation,
  settings: Settings,
  log: Logger,
): Promise<number> {
  const run = checkRunName(requiredOption(inv, 'run'));
  const output = requiredOption(inv, 'output');
  // Checked before Redis is asked, so a wrong path fails at once.
  const target = resolveOutputTarget(output, { label: `-o ${output}` });
  checkOutsideRunFolder(target, output, settings.outputDir, run);
  let phase: ExportPhase = 'writing';
  exitOnInterrupt(log, {
    message: (replaced) => {
      // The rename onto the output can finish before exportRun returns.
      const written =
        phase === 'writing' &&
        target.kind === 'file' &&
        replaced.has(target.path);
      return interruptMessage(
        run,
        output,
        target,
        written ? 'expiring' : phase,
      );
    },
  });
  const replyTimeoutMs = settings.redisTimeoutSeconds * 1000;
  const redis = connectRedis(settings.redisUrl, log, {
    oneShot: true,
    replyTimeoutMs,
  });
  await checkRedis(redis, settings.redisUrl, replyTimeoutMs);
  try {
    const store = new RunStore(redis, settings.prefix, settings.queue, run);
    const stats = await store.stats();
    if (!stats.documents && !(await store.exists())) {
      throw new RangeError(
        `run ${run} has no documents in queue ${settings.queue}; enqueue a file with --run ${run} first`,
      );
    }
    if (!stats.documents && stats.rejected) {
      throw new RangeError(
        `run ${run} has no documents: all ${stats.rejected} rows its enqueues read were rejected; ` +
          `${join(settings.outputDir, run, 'rejects.jsonl')} gives the reason for each row`,
      );
    }
    // A run whose every chunk failed for good may have no part file at all,
    // for example when no part file could be written. Its failures are in
    // Redis.
    if ((stats.failedChunks ?? 0) < stats.chunks) {
      await checkPartFilesExist(store, settings.outputDir);
    }
    const summary = await exportRun(
      store,
      settings.outputDir,
      output,
      Boolean(inv.values.partial),
      log,
    );
    // A partial export leaves chunks to be processed, so the records stay.
    let retentionDays = 0;
    if (summary.incomplete === 0) {
      phase = 'expiring';
      retentionDays = await store.expireAfterExport(settings.runRetentionDays);
    }
    phase = 'done';
    log.info({ run, ...summary, output, retentionDays }, 'export finished');
    process.stderr.write(
      `${summary.documents} documents of run ${run} written to ${outputName(output)}; ${summary.failed} with errors` +
        (retentionDays > 0
          ? `; the run's Redis records expire in ${retentionDays} days`
          : '') +
        '\n',
    );
    if (summary.documents > 0 && summary.failed === summary.documents) {
      process.stderr.write(
        `uie-batch: every document of run ${run} failed; the "error" field of each line in ${outputName(output)} says why\n`,
      );
      return 1;
    }
    return 0;
  } finally {
    redis.disconnect();
  }
}

/**
 * Rejects an output file in the run's own folder under outputDir, where
 * its part files and rejects file are: the export would replace one of
 * them, and the run's results with it.
 *
 * @throws InputError naming the output and the folder
 */
function checkOutsideRunFolder(
  target: OutputTarget,
  output: string,
  outputDir: string,
  run: string,
): void {
  if (target.kind !== 'file') return;
  const folder = realPathOrSelf(resolve(outputDir, run));
  const parent = realPathOrSelf(dirname(target.path));
  const rel = relative(folder, parent);
  const outside = rel === '..' || rel.startsWith(`..${sep}`) || isAbsolute(rel);
  if (!outside) {
    throw new InputError(
      `-o ${output}: ${target.path} is in the folder of run ${run}'s results (${folder}), ` +
        'which the export reads; write the export elsewhere',
    );
  }
}

function realPathOrSelf(path: string): string {
  try {
    return realpathSync(path);
  } catch {
    return path;
  }
}

/**
 * Step of an export: writing its output, setting the expiry of the run's
 * records once the output is complete, or done but for the summary.
 */
type ExportPhase = 'writing' | 'expiring' | 'done';

/**
 * Returns the stderr line of an interrupted export. Until the output is
 * committed, a regular file keeps its earlier content, but standard output,
 * a FIFO or a device keeps the lines already written.
 */
function interruptMessage(
  run: string,
  output: string,
  target: OutputTarget,
  phase: ExportPhase,
): string {
  const interrupted = `uie-batch: export of run ${run} interrupted`;
  const name = outputName(output);
  if (phase === 'expiring') {
    return (
      `${interrupted} after ${name} was written, before the run's Redis records were set to expire; ` +
      'run the same export again to set their expiry\n'
    );
  }
  if (phase === 'done') return `${interrupted} after ${name} was written\n`;
  if (
    target.kind === 'file' ||
    (target.kind === 'device' && !wroteTo(target))
  ) {
    return `${interrupted}; nothing was written to ${output}\n`;
  }
  return `${interrupted}; the output to ${name} is incomplete\n`;
}

/**
 * Checks that a run with documents has part files of its generation.
 * Without this check, an export that reads another outputDir than the
 * workers wrote to would call every document unprocessed.
 *
 * @throws InputError naming the absolute parts folder and the outputDir
 *   setting when that folder has no part files of the run or does not exist
 */
async function checkPartFilesExist(
  store: RunStore,
  outputDir: string,
): Promise<void> {
  const generation = await store.generation();
  const dir = resolve(partsDir(outputDir, store.run));
  let files: string[];
  try {
    files = await listPartFiles(outputDir, store.run, generation);
  } catch (err) {
    throw new InputError(
      `run ${store.run}: cannot read the result folder ${dir}: ${(err as Error).message}. Check that this user may read it`,
      { cause: err },
    );
  }
  if (files.length > 0) return;
  throw new InputError(
    `run ${store.run}: no result files found in ${dir}. Workers write them under the outputDir setting ` +
      `(${envName('outputDir')}, now ${outputDir}), so run export with the outputDir of the workers. ` +
      `If it is the same, uie-batch status --run ${store.run} shows whether the run's jobs are still waiting or have failed`,
  );
}

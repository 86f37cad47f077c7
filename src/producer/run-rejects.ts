import { createHash } from 'node:crypto';
import { appendFile, mkdir, rename } from 'node:fs/promises';
import { join } from 'node:path';

import type { Logger } from 'pino';

import type { RunStore } from '../queue/run-store.js';
import type { RejectedRow } from './csv-source.js';
import { recordedFile } from './open-input.js';

/**
 * Renames `<outputDir>/<run>/rejects.jsonl` to
 * `rejects.<time>.jsonl` when the run has no records, because the file then
 * contains the rejects of a forgotten or expired run of the same name.
 */
export async function moveOldRejects(
  outputDir: string,
  run: string,
  log: Logger,
): Promise<void> {
  const path = join(outputDir, run, 'rejects.jsonl');
  const stamp = new Date().toISOString().replace(/[-:]/g, '');
  const moved = join(outputDir, run, `rejects.${stamp}.jsonl`);
  try {
    await rename(path, moved);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  log.info({ run, moved }, 'moved the rejects file of an earlier run aside');
}

/**
 * Returns the default reject handler. A row not rejected in the run before
 * is logged, appended to `<outputDir>/<run>/rejects.jsonl` and counted in
 * the run's stats, and the handler returns true. For a row rejected before
 * it returns false.
 *
 * A row is the same as one rejected before when it comes from the same file
 * with the same id and reason. Of several such rows in one enqueue, the nth
 * is the same as the nth of the earlier enqueue. The line does not count, so
 * a rejected row that moved, as when rows were inserted above it, is not
 * recorded twice, and another bad row at a line rejected before is. A row
 * without an id counts by its line instead.
 */
export function runRejectWriter(
  store: RunStore,
  outputDir: string,
  log: Logger,
): (row: RejectedRow) => Promise<boolean> {
  const rejectsPath = join(outputDir, store.run, 'rejects.jsonl');
  let ready: Promise<unknown> | undefined;
  const repeats = new Map<string, number>();
  return async (row) => {
    const file = recordedFile(row.file);
    // A row without an id has only its line to tell it from another.
    const rowName = row.id === undefined ? `line ${row.line}` : `id ${row.id}`;
    const identity = `${file}\0${rowName}\0${row.reason}`;
    const repeat = (repeats.get(identity) ?? 0) + 1;
    repeats.set(identity, repeat);
    const key = createHash('sha256')
      .update(`${identity}\0${repeat}`)
      .digest('hex')
      .slice(0, 32);
    if (await store.hasReject(file, key)) return false;
    log.warn(
      { file: row.file, line: row.line, id: row.id, reason: row.reason },
      'row rejected',
    );
    ready ??= mkdir(join(outputDir, store.run), { recursive: true });
    await ready;
    // Appended before it is recorded: a producer killed in between writes
    // the row again on the next enqueue rather than losing it.
    await appendFile(rejectsPath, JSON.stringify(row) + '\n');
    await store.addReject(file, key);
    return true;
  };
}

import type { RunStore } from '../queue/run-store.js';

/**
 * Opens the run's generation and stores its schema, before the first jobs
 * of an enqueue are queued.
 *
 * @returns the run's generation; see {@link RunStore.openGeneration}
 * @throws RangeError when the run has another schema stored
 */
export async function openRun(
  store: RunStore,
  schema: string[],
): Promise<number | undefined> {
  const generation = await store.openGeneration();
  // A run recorded before runs stored their schema gets the schema of this
  // enqueue. The schema of its earlier jobs is unknown, so this enqueue
  // cannot be checked, but every later one is checked against it. Storing
  // nothing would leave such a run unchecked for good.
  const stored = await store.storeSchema(schema);
  // Checked again, because a producer that took over the run after this
  // one's lock expired may have stored another schema since the first check.
  checkSchema(store.run, stored, schema);
  return generation;
}

/**
 * Rejects an enqueue whose schema has other labels than the one the run's
 * jobs were queued with, because an export would then mix documents
 * extracted with both. The order of the labels does not matter, since each
 * document's entities are sorted by position.
 *
 * @param stored - the run's schema, or undefined for a run without one
 * @throws RangeError naming the run, both schemas and what to do instead
 */
export function checkSchema(
  run: string,
  stored: string[] | undefined,
  requested: string[],
): void {
  if (stored === undefined || sameLabels(stored, requested)) return;
  const queuedWith = stored.join(',');
  throw new RangeError(
    `run ${run} was queued with schema ${queuedWith}, not ${requested.join(',')}. ` +
      `To add documents to it, pass --schema ${queuedWith}; otherwise pass ` +
      `a new --run name, or delete the run first with uie-batch forget --run ${run}`,
  );
}

function sameLabels(a: string[], b: string[]): boolean {
  const set = new Set(a);
  return set.size === new Set(b).size && b.every((label) => set.has(label));
}

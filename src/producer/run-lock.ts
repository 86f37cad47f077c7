import { hostname } from 'node:os';

import type { RedisLock } from '../queue/redis-lock.js';
import type { RunStore } from '../queue/run-store.js';

// Name and time-to-live in milliseconds of the lock a producer holds on its
// run. The holder renews it every third of that time, so the time-to-live
// only matters when a producer dies, which blocks its run for at most a
// minute.
const PRODUCER_LOCK = 'enqueue';
const PRODUCER_LOCK_MS = 60_000;

// Locks taken by lockRun and not yet given back with unlockRun, which an
// interrupted command releases on its way out.
const heldLocks = new Set<RedisLock>();

/**
 * Takes the run's producer lock. One producer at a time may queue into a
 * run, because the duplicate check reads the run's documents before their
 * jobs and records are written. `forget` takes the lock too. While held,
 * the lock also counts as a producer of the queue, so that workers started
 * with --exit-when-drained wait for it.
 *
 * @throws RangeError naming the run and the lock owner when another
 *   process has the lock
 */
export async function lockRun(store: RunStore): Promise<RedisLock> {
  const lock = await tryLockRun(store);
  if (lock) {
    heldLocks.add(lock);
    return lock;
  }
  const holder = await store.lockHolder(PRODUCER_LOCK);
  throw new RangeError(
    `run ${store.run} is being enqueued by another producer` +
      (holder ? ` (${holder})` : '') +
      '; wait for it to finish and run this command again. If that producer ' +
      `was killed, its lock expires ${PRODUCER_LOCK_MS / 1000} s after it last renewed it`,
  );
}

/**
 * Takes the run's producer lock like {@link lockRun}, or returns undefined
 * when another process has it.
 */
export function tryLockRun(store: RunStore): Promise<RedisLock | undefined> {
  const holder = `pid ${process.pid} on host ${hostname()}`;
  return store.lock(PRODUCER_LOCK, PRODUCER_LOCK_MS, holder, true);
}

/**
 * Stops an enqueue whose producer lock was lost, since another producer may
 * then be queuing into the run. Documents queued so far stay queued.
 */
export function checkLock(lock: RedisLock, run: string): void {
  if (!lock.isLost) return;
  throw new Error(
    `run ${run}: the producer lock expired during the enqueue, so another producer may be queuing into the run; run this command again to queue the remaining documents`,
  );
}

/** Releases a lock taken by {@link lockRun}. */
export function unlockRun(lock: RedisLock): Promise<void> {
  heldLocks.delete(lock);
  return lock.release();
}

/**
 * Releases every lock that {@link lockRun} took in this process and that is
 * still held, waiting at most timeoutMs. Called on an interrupt, so the run
 * and the workers waiting for its producer are free at once rather than
 * when the lock expires. A lock not released in time expires on its own.
 */
export async function releaseRunLocks(timeoutMs: number): Promise<void> {
  const releases = [...heldLocks].map((lock) =>
    unlockRun(lock).catch(() => {}),
  );
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, timeoutMs);
  });
  await Promise.race([Promise.all(releases), timeout]);
  clearTimeout(timer);
}

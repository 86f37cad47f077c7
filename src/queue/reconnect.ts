import { setTimeout as delay } from 'node:timers/promises';

// How long a write waits for Redis to come back before failing for good;
// matches the ride-through of a long one-shot command's connection.
const GIVE_UP_MS = 40_000;
const PAUSE_MS = 500;

/**
 * True for errors that mean the connection dropped while a command or
 * pipeline was in flight. ioredis resends single commands after a
 * reconnect by itself, but aborts pipelines and transactions.
 */
export function isConnectionLoss(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  return (
    err.name === 'AbortError' ||
    /connection (is )?closed|ECONNRESET|ECONNREFUSED|EPIPE|ETIMEDOUT/i.test(
      err.message,
    )
  );
}

/**
 * Runs an idempotent Redis write again while the connection is being
 * re-established, so a Redis restart does not stop a long producer.
 *
 * @param write - must give the same result when run twice
 * @throws the last error once Redis has been away for about 40 s, or at
 *   once for an error other than a lost connection
 */
export async function retryOnReconnect<T>(write: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + GIVE_UP_MS;
  for (;;) {
    try {
      return await write();
    } catch (err) {
      if (!isConnectionLoss(err) || Date.now() > deadline) throw err;
      await delay(PAUSE_MS);
    }
  }
}

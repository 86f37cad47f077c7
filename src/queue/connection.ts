import { Redis } from 'ioredis';
import type { Logger } from 'pino';

import { redactUrl } from '../config/config.js';
import { RedisUnavailableError } from '../errors/errors.js';

// Most recent connection error of each client, for a readable failure.
const lastErrors = new WeakMap<Redis, string>();

// Repeated connection errors are logged at most this often.
const ERROR_LOG_INTERVAL_MS = 10_000;

/**
 * Opens a Redis connection for BullMQ. Commands wait through a Redis restart
 * instead of failing, which BullMQ workers require; `rediss://` URLs use TLS
 * and a password in the URL authenticates. Connection errors are logged with
 * the password removed.
 */
export function connectRedis(
  url: string,
  log?: Logger,
  options: { oneShot?: boolean } = {},
): Redis {
  const redis = new Redis(url, {
    // A one-shot command fails after a few tries instead of waiting forever.
    maxRetriesPerRequest: options.oneShot ? 3 : null,
    connectTimeout: 5000,
    retryStrategy: (times) => Math.min(times * 200, 5000),
  });
  let lastLogged = 0;
  let suppressed = 0;
  redis.on('error', (err: Error) => {
    lastErrors.set(redis, err.message);
    const now = Date.now();
    if (now - lastLogged < ERROR_LOG_INTERVAL_MS) {
      suppressed++;
      return;
    }
    log?.warn(
      { redis: redactUrl(url), err: { message: err.message }, suppressed },
      'Redis connection error; retrying',
    );
    lastLogged = now;
    suppressed = 0;
  });
  return redis;
}

/**
 * Sends PING, for commands that should fail fast, and closes the connection
 * when Redis does not reply.
 *
 * @throws RedisUnavailableError naming the URL without its password
 */
export async function checkRedis(redis: Redis, url: string): Promise<void> {
  try {
    await redis.ping();
  } catch (err) {
    // Stop reconnecting, or the process would never exit.
    redis.disconnect();
    const reason = lastErrors.get(redis) ?? (err as Error).message;
    throw new RedisUnavailableError(
      `cannot reach Redis at ${redactUrl(url)} (${reason}); ` +
        'check REDIS_URL and that the server is running',
      { cause: err },
    );
  }
}

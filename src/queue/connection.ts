import { Redis } from 'ioredis';
import type { Logger } from 'pino';

import { redactUrl } from '../config/config.js';

// Repeated connection errors are logged at most this often.
const ERROR_LOG_INTERVAL_MS = 10_000;

/**
 * Opens a Redis connection for BullMQ. Commands wait through a Redis restart
 * instead of failing, which BullMQ workers require; `rediss://` URLs use TLS
 * and a password in the URL authenticates. Connection errors are logged with
 * the password removed.
 */
export function connectRedis(url: string, log?: Logger): Redis {
  const redis = new Redis(url, {
    maxRetriesPerRequest: null,
    retryStrategy: (times) => Math.min(times * 200, 5000),
  });
  let lastLogged = 0;
  let suppressed = 0;
  redis.on('error', (err: Error) => {
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

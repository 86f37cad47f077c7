import { Redis } from 'ioredis';

/**
 * Opens a Redis connection for BullMQ. Commands wait through a Redis restart
 * instead of failing, which BullMQ workers require; `rediss://` URLs use TLS
 * and a password in the URL authenticates.
 */
export function connectRedis(url: string): Redis {
  return new Redis(url, {
    maxRetriesPerRequest: null,
    retryStrategy: (times) => Math.min(times * 200, 5000),
  });
}

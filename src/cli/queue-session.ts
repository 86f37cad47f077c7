import { setTimeout as delay } from 'node:timers/promises';

import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';

import { chunkLengthFor } from '../chunking/plan.js';
import { modelPath, type Settings } from '../config/config.js';
import { readModelFolder } from '../model/model-folder.js';
import { checkRedis, connectRedis } from '../queue/connection.js';

/** A Redis connection and the BullMQ queue on it, closed together. */
export interface QueueSession {
  redis: Redis;
  queue: Queue;
  close(): Promise<void>;
}

/**
 * Opens the configured queue. A one-shot command checks Redis first and
 * fails fast; a worker keeps retrying through Redis restarts.
 *
 * @throws RedisUnavailableError when a one-shot command cannot reach Redis
 */
export async function openQueue(
  settings: Settings,
  log: Logger,
  oneShot: boolean,
): Promise<QueueSession> {
  const redis = connectRedis(settings.redisUrl, log, { oneShot });
  if (oneShot) await checkRedis(redis, settings.redisUrl);
  const queue = new Queue(settings.queue, {
    connection: redis,
    prefix: settings.prefix,
  });
  return {
    redis,
    queue,
    async close() {
      // Disconnect first: closing the queue waits for Redis, which may be down.
      redis.disconnect();
      await Promise.race([queue.close(), delay(2000)]);
    },
  };
}

/** Returns the chunk length the configured model and schema allow, in characters. */
export function configuredChunkLength(settings: Settings): number {
  const folder = readModelFolder(modelPath(settings));
  return chunkLengthFor(
    folder.manifest.max_seq_len,
    settings.schema,
    settings.chunkChars,
  );
}

import { randomUUID } from 'node:crypto';

import type { Redis } from 'ioredis';

// Extends or deletes the lock only while it still carries our value, so a
// process whose lock expired cannot extend or delete the next holder's lock.
const RENEW = `if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('pexpire', KEYS[1], ARGV[2])
end
return 0`;
const RELEASE = `if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('del', KEYS[1])
end
return 0`;

/**
 * A lock on one Redis key, taken with `SET key value NX PX ttl` and renewed
 * every third of its time-to-live until released. If the holder dies, the
 * key expires after the time-to-live and another process can take it. The
 * value is a random token, followed by a description of the holder when one
 * is given, so that a process that finds the lock taken can name its holder.
 */
export class RedisLock {
  private readonly timer: NodeJS.Timeout;
  private lost = false;

  private constructor(
    private readonly redis: Redis,
    readonly key: string,
    readonly token: string,
    private readonly value: string,
    ttlMs: number,
  ) {
    this.timer = setInterval(() => {
      redis
        .eval(RENEW, 1, key, value, ttlMs)
        .then((renewed) => {
          if (renewed !== 1) this.lost = true;
        })
        .catch(() => {
          // A failed renewal is retried at the next tick; the key expires
          // on its own if Redis stays unreachable.
        });
    }, ttlMs / 3);
    this.timer.unref();
  }

  /**
   * Takes the lock, or returns undefined when another process holds it.
   *
   * @param ttlMs - how long the key lives without renewal, in milliseconds
   * @param holder - who takes the lock, such as `pid 12 on host a`, which
   *   {@link RedisLock.holder} returns to other processes
   */
  static async acquire(
    redis: Redis,
    key: string,
    ttlMs: number,
    holder?: string,
  ): Promise<RedisLock | undefined> {
    const token = randomUUID();
    const value = holder ? `${token} ${holder}` : token;
    const reply = await redis.set(key, value, 'PX', ttlMs, 'NX');
    return reply === 'OK'
      ? new RedisLock(redis, key, token, value, ttlMs)
      : undefined;
  }

  /**
   * Returns the holder description given to {@link RedisLock.acquire} by
   * the process that holds the lock, or undefined when the lock is free or
   * its holder gave none.
   */
  static async holder(redis: Redis, key: string): Promise<string | undefined> {
    const value = await redis.get(key);
    if (value === null) return undefined;
    const space = value.indexOf(' ');
    return space < 0 ? undefined : value.slice(space + 1);
  }

  /** Whether a renewal found the key expired or taken by another process. */
  get isLost(): boolean {
    return this.lost;
  }

  /** Stops the renewals and deletes the key if this lock still holds it. */
  async release(): Promise<void> {
    clearInterval(this.timer);
    await this.redis.eval(RELEASE, 1, this.key, this.value);
  }
}

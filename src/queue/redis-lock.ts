import { randomUUID } from 'node:crypto';

import type { Redis } from 'ioredis';

// Each script takes the lock key and, when the lock is registered, the key
// of the registry: a sorted set of holder values scored by the time in ms
// at which each entry lapses. Redis's own clock sets the score, so the
// clocks of the hosts that read the registry do not matter.
const REGISTER = `local function register(ttl)
  if KEYS[2] then
    local t = redis.call('time')
    local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
    redis.call('zadd', KEYS[2], now + ttl, ARGV[1])
  end
end
`;
const ACQUIRE = `${REGISTER}
if not redis.call('set', KEYS[1], ARGV[1], 'PX', ARGV[2], 'NX') then
  return 0
end
register(tonumber(ARGV[2]))
return 1`;
// Extends or deletes the lock only while it still carries our value, so a
// process whose lock expired cannot extend or delete the next holder's lock.
const RENEW = `${REGISTER}
if redis.call('get', KEYS[1]) == ARGV[1] then
  register(tonumber(ARGV[2]))
  return redis.call('pexpire', KEYS[1], ARGV[2])
end
return 0`;
const RELEASE = `if KEYS[2] then
  redis.call('zrem', KEYS[2], ARGV[1])
end
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('del', KEYS[1])
end
return 0`;
// Drops the lapsed entries of a registry and counts the rest.
const COUNT_LIVE = `local t = redis.call('time')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('zremrangebyscore', KEYS[1], '-inf', now)
return redis.call('zcard', KEYS[1])`;

/**
 * A lock on one Redis key, taken with `SET key value NX PX ttl` and renewed
 * every third of its time-to-live until released. If the holder dies, the
 * key expires after the time-to-live and another process can take it. The
 * value is a random token, followed by a description of the holder when one
 * is given, so that a process that finds the lock taken can name its holder.
 *
 * A lock can also be entered in a registry, a sorted set shared by locks of
 * one kind, so that other processes can count the live holders without
 * scanning for lock keys. The entry lapses with the lock's time-to-live.
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
    private readonly keys: string[],
  ) {
    this.timer = setInterval(() => {
      redis
        .eval(RENEW, keys.length, ...keys, value, ttlMs)
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
   * @param registry - key of the sorted set that lists the live holders of
   *   locks of this kind; see {@link RedisLock.countLive}
   */
  static async acquire(
    redis: Redis,
    key: string,
    ttlMs: number,
    holder?: string,
    registry?: string,
  ): Promise<RedisLock | undefined> {
    const token = randomUUID();
    const value = holder ? `${token} ${holder}` : token;
    const keys = registry ? [key, registry] : [key];
    const reply = await redis.eval(ACQUIRE, keys.length, ...keys, value, ttlMs);
    return reply === 1
      ? new RedisLock(redis, key, token, value, ttlMs, keys)
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

  /**
   * Counts the locks in a registry that are held and renewed. A holder that
   * died stays counted until its time-to-live runs out.
   */
  static async countLive(redis: Redis, registry: string): Promise<number> {
    return Number(await redis.eval(COUNT_LIVE, 1, registry));
  }

  /** Whether a renewal found the key expired or taken by another process. */
  get isLost(): boolean {
    return this.lost;
  }

  /**
   * Stops the renewals, leaves the registry, and deletes the key if this
   * lock still holds it.
   */
  async release(): Promise<void> {
    clearInterval(this.timer);
    await this.redis.eval(RELEASE, this.keys.length, ...this.keys, this.value);
  }
}

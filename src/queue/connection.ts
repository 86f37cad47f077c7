import type { Redis } from 'ioredis';
import type { Logger } from 'pino';

import { envName, redactUrl } from '../config/config.js';
import { RedisUnavailableError } from '../errors/errors.js';
import { loadIoredis } from './load-packages.js';

// Most recent connection error of each client, for a readable failure.
const lastErrors = new WeakMap<Redis, Error>();

// Stops the warnings of warnWithoutReply for a connection closed on
// purpose, because its 'close' event comes too late to stop a due warning.
const stopWarnings = new WeakMap<Redis, () => void>();

// Repeated connection errors are logged at most this often.
const ERROR_LOG_INTERVAL_MS = 10_000;

// Node.js error codes of a server certificate that no trusted CA signed.
const UNTRUSTED_CERT_CODES = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
]);

// The default of redisTimeoutSeconds in config/default.json, in ms.
const DEFAULT_REPLY_TIMEOUT_MS = 10_000;

/** Options of {@link connectRedis}. */
export interface ConnectRedisOptions {
  /**
   * Whether commands fail after a few reconnect attempts instead of waiting
   * for Redis to come back.
   * @defaultValue false
   */
  oneShot?: boolean;
  /**
   * Milliseconds a connection that Redis accepted may go without a reply
   * before a warning is logged, from the setting redisTimeoutSeconds.
   * @defaultValue 10000
   */
  replyTimeoutMs?: number;
}

/**
 * Opens a Redis connection for BullMQ. Commands wait through a Redis restart
 * instead of failing, which BullMQ workers require; `rediss://` URLs use TLS
 * and a password in the URL authenticates. Connection errors, and a server
 * that accepts the connection but does not reply, are logged with the
 * password removed.
 *
 * NOTE: `DEBUG=ioredis:*` makes ioredis print every command it sends,
 * including the password in AUTH and HELLO, so that output is not safe to
 * share.
 */
export function connectRedis(
  url: string,
  log?: Logger,
  options: ConnectRedisOptions = {},
): Redis {
  const ioredis = loadIoredis();
  const redis = new ioredis.Redis(url, {
    // A one-shot command fails after a few tries instead of waiting forever.
    maxRetriesPerRequest: options.oneShot ? 3 : null,
    connectTimeout: 5000,
    retryStrategy: (times) => Math.min(times * 200, 5000),
  });
  let lastLogged = 0;
  let suppressed = 0;
  redis.on('error', (err: Error) => {
    lastErrors.set(redis, err);
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
  if (log) {
    warnWithoutReply(
      redis,
      url,
      log,
      options.replyTimeoutMs ?? DEFAULT_REPLY_TIMEOUT_MS,
    );
  }
  return redis;
}

/**
 * Logs a warning when Redis accepts a connection but sends no reply within
 * timeoutMs, such as a paused process whose kernel still accepts
 * connections, and repeats it at most every 10 s until Redis replies.
 * Without commandTimeout or socketTimeout, which this module does not set,
 * ioredis 6 neither times out nor reconnects such a connection, so a worker
 * would otherwise wait without a word.
 */
function warnWithoutReply(
  redis: Redis,
  url: string,
  log: Logger,
  timeoutMs: number,
): void {
  let timer: NodeJS.Timeout | undefined;
  const stop = () => {
    clearTimeout(timer);
    timer = undefined;
  };
  redis.on('connect', () => {
    stop();
    const connectedAt = Date.now();
    const warn = () => {
      log.warn(
        {
          redis: redactUrl(url),
          waitedSeconds: Math.round((Date.now() - connectedAt) / 1000),
        },
        'Redis accepted the connection but has not replied; ' +
          'check that the server is not paused, overloaded or still loading its data',
      );
      timer = setTimeout(warn, Math.max(timeoutMs, ERROR_LOG_INTERVAL_MS));
      timer.unref();
    };
    // Unref'd, so the timer does not keep a finished command running.
    timer = setTimeout(warn, timeoutMs);
    timer.unref();
  });
  redis.on('ready', stop);
  redis.on('close', stop);
  stopWarnings.set(redis, stop);
}

/**
 * Sends PING, for commands that should fail fast, and closes the connection
 * when Redis does not reply within timeoutMs.
 *
 * @param timeoutMs - the setting redisTimeoutSeconds in milliseconds,
 *   10000 by default
 * @throws RedisUnavailableError naming the URL without its password and
 *   saying what to check
 */
export async function checkRedis(
  redis: Redis,
  url: string,
  timeoutMs = DEFAULT_REPLY_TIMEOUT_MS,
): Promise<void> {
  // The code lets unavailableMessage add its hint for a TLS timeout.
  const timeout = Object.assign(
    new Error(`not connected within ${timeoutMs / 1000} s`),
    { code: 'ETIMEDOUT' },
  );
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(timeout), timeoutMs);
  });
  try {
    await Promise.race([redis.ping(), timedOut]);
  } catch (err) {
    // The status is read first, because disconnect() changes it. 'connect'
    // means the socket is open but Redis has not replied to the ready check.
    const accepted = redis.status === 'connect' || redis.status === 'ready';
    // Stop reconnecting, or the process would never exit.
    stopWarnings.get(redis)?.();
    redis.disconnect();
    // A server that does not reply does not close its end either, and
    // ioredis would keep the socket, and so the process, for its
    // disconnectTimeout (2 s by default in ioredis 6) more.
    redis.stream?.destroy();
    const message =
      err === timeout && accepted
        ? noReplyMessage(url, timeoutMs)
        : unavailableMessage(url, lastErrors.get(redis) ?? (err as Error));
    throw new RedisUnavailableError(message, { cause: err });
  } finally {
    clearTimeout(timer);
  }
}

/** Explains a Redis that accepted the connection but sent no reply. */
function noReplyMessage(url: string, timeoutMs: number): string {
  return (
    `Redis at ${redactUrl(url)} accepted the connection but did not reply ` +
    `within ${timeoutMs / 1000} s; check that REDIS_URL points to a Redis ` +
    'server and that the server is not paused, overloaded or still loading ' +
    `its data (${envName('redisTimeoutSeconds')} sets how long to wait)`
  );
}

/**
 * Explains why Redis at url did not reply: what failed, at which URL (its
 * password hidden), and what to check for that kind of failure.
 */
function unavailableMessage(url: string, err: Error): string {
  const where = redactUrl(url);
  const code = (err as NodeJS.ErrnoException).code ?? '';
  const tls = url.startsWith('rediss:');
  // Redis replies WRONGPASS to a wrong user name or password, and NOAUTH
  // when it requires a password but the client sent none.
  if (/^(WRONGPASS|NOAUTH)\b/.test(err.message)) {
    return (
      `authentication to Redis at ${where} failed (${err.message}); ` +
      'check the user name and password in REDIS_URL'
    );
  }
  if (UNTRUSTED_CERT_CODES.has(code)) {
    return (
      `cannot verify the TLS certificate of Redis at ${where} (${err.message}); ` +
      'if a private CA signed it, set NODE_EXTRA_CA_CERTS to the CA ' +
      'certificate file (PEM) before starting uie-batch'
    );
  }
  if (code === 'ERR_TLS_CERT_ALTNAME_INVALID') {
    return (
      `the TLS certificate of Redis at ${where} does not name this host ` +
      `(${err.message}); use a host name from the certificate in REDIS_URL`
    );
  }
  // A TLS-only port resets a plain connection. A plain port sends no reply
  // to a TLS handshake, so that connection times out instead.
  if (!tls && (code === 'ECONNRESET' || code === 'EPIPE')) {
    return (
      `Redis at ${where} closed the connection (${err.message}); ` +
      'if the server accepts only TLS, use a rediss:// URL in REDIS_URL'
    );
  }
  const hint =
    tls && code === 'ETIMEDOUT'
      ? '; if the server does not use TLS, use a redis:// URL'
      : '';
  return (
    `cannot reach Redis at ${where} (${err.message}); ` +
    `check REDIS_URL and that the server is running${hint}`
  );
}

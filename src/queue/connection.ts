import type { Redis } from 'ioredis';
import type { Logger } from 'pino';

import { redactUrl } from '../config/config.js';
import { RedisUnavailableError } from '../errors/errors.js';
import { loadIoredis } from './load-packages.js';

// Most recent connection error of each client, for a readable failure.
const lastErrors = new WeakMap<Redis, Error>();

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

/**
 * Opens a Redis connection for BullMQ. Commands wait through a Redis restart
 * instead of failing, which BullMQ workers require; `rediss://` URLs use TLS
 * and a password in the URL authenticates. Connection errors are logged with
 * the password removed.
 *
 * NOTE: `DEBUG=ioredis:*` makes ioredis print every command it sends,
 * including the password in AUTH and HELLO, so that output is not safe to
 * share.
 */
export function connectRedis(
  url: string,
  log?: Logger,
  options: { oneShot?: boolean } = {},
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
  return redis;
}

/**
 * Sends PING, for commands that should fail fast, and closes the connection
 * when Redis does not reply.
 *
 * @throws RedisUnavailableError naming the URL without its password and
 *   saying what to check
 */
export async function checkRedis(redis: Redis, url: string): Promise<void> {
  try {
    await redis.ping();
  } catch (err) {
    // Stop reconnecting, or the process would never exit.
    redis.disconnect();
    const reason = lastErrors.get(redis) ?? (err as Error);
    throw new RedisUnavailableError(unavailableMessage(url, reason), {
      cause: err,
    });
  }
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

import { pino, type Logger } from 'pino';

import { redactUrl } from '../config/config.js';

// Fields that may contain a Redis password, at the top level or one level
// down (as in `{ settings }`).
const SECRET_PATHS = ['redisUrl', '*.redisUrl', 'password', '*.password'];

/**
 * Creates the process logger: JSON lines on stderr, so stdout stays data. A
 * `redisUrl` field keeps its host with the password hidden; a `password`
 * field becomes ***.
 */
export function createLogger(level: string, name = 'uie-batch'): Logger {
  return pino(
    {
      name,
      level,
      redact: {
        paths: SECRET_PATHS,
        censor: (value, path) =>
          path.at(-1) === 'redisUrl' ? redactUrl(String(value)) : '***',
      },
    },
    pino.destination({ fd: 2, sync: true }),
  );
}

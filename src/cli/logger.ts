import { pino, type Logger } from 'pino';

/** Creates the process logger: JSON lines on stderr, so stdout stays data. */
export function createLogger(level: string, name = 'uie-batch'): Logger {
  return pino(
    {
      name,
      level,
      redact: { paths: ['redisUrl', 'password', '*.password'], censor: '***' },
    },
    pino.destination({ fd: 2, sync: true }),
  );
}

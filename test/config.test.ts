import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import {
  envName,
  loadSettings,
  modelPath,
  PACKAGE_ROOT,
  redactUrl,
} from '../src/config/config.js';
import { ConfigError } from '../src/errors/errors.js';
import { tempDir } from './helpers.js';

const defaults = JSON.parse(
  readFileSync(join(PACKAGE_ROOT, 'config/default.json'), 'utf8'),
) as Record<string, unknown>;

/** Loads settings from env alone and returns the ConfigError message. */
function errorFor(env: NodeJS.ProcessEnv): string {
  try {
    loadSettings({}, env);
  } catch (err) {
    assert.ok(err instanceof ConfigError, String(err));
    return err.message;
  }
  assert.fail(`no ConfigError for ${JSON.stringify(env)}`);
}

describe('loadSettings', () => {
  it('loads the defaults', () => {
    assert.deepEqual(loadSettings({}, {}), defaults);
  });

  it('ignores unrelated env vars', () => {
    const env = { HOME: '/root', THREADS: '9' };
    assert.deepEqual(loadSettings({}, env), defaults);
  });

  it('ignores empty env vars', () => {
    const settings = loadSettings({}, { UIE_THREADS: '' });
    assert.equal(settings.threads, defaults.threads);
  });

  it('names a settings file with invalid JSON', () => {
    const file = join(tempDir('config-json'), 'default.json');
    writeFileSync(file, '{broken');

    assert.throws(
      () => loadSettings({}, {}, file),
      (err: Error) => err.message.startsWith(`${file}: invalid JSON: `),
    );
  });

  it('rejects an unknown key in the settings file', () => {
    const file = join(tempDir('config-keys'), 'default.json');
    writeFileSync(file, JSON.stringify({ ...defaults, threadz: 2 }));

    assert.throws(
      () => loadSettings({}, {}, file),
      (err: Error) =>
        err.message.startsWith(
          `${file}: unknown setting "threadz"; known settings: redisUrl, `,
        ),
    );
  });

  it('shows a redisUrl that is not a string', () => {
    assert.throws(
      () => loadSettings({ redisUrl: 5 }, {}),
      /redisUrl \(REDIS_URL\): expected a non-empty string, got 5$/,
    );
  });

  it('rejects a label with a separator', () => {
    assert.throws(() => loadSettings({ schema: '人物;地点,机构' }, {}), {
      name: 'ConfigError',
      message:
        'schema (UIE_SCHEMA): label "人物;地点" contains ";"; separate labels with commas, as in 人物,地点',
    });
  });

  it('rejects an empty queue or prefix', () => {
    for (const [name, key] of [
      ['UIE_QUEUE', 'queue'],
      ['UIE_PREFIX', 'prefix'],
    ]) {
      assert.throws(
        () => loadSettings({}, { [name]: '' }),
        new RegExp(`^ConfigError: ${key} \\(${name}\\): set but empty;`),
      );
    }
  });

  it('reads numbers from env', () => {
    const settings = loadSettings(
      {},
      { UIE_THREADS: '4', UIE_THRESHOLD: '0.3', UIE_CHUNK_CHARS: '120' },
    );
    assert.equal(settings.threads, 4);
    assert.equal(settings.threshold, 0.3);
    assert.equal(settings.chunkChars, 120);
  });

  it('reads strings from env', () => {
    const settings = loadSettings(
      {},
      {
        REDIS_URL: 'rediss://cache.internal:6380/2',
        UIE_QUEUE: 'news.v2',
        LOG_LEVEL: 'debug',
      },
    );
    assert.equal(settings.redisUrl, 'rediss://cache.internal:6380/2');
    assert.equal(settings.queue, 'news.v2');
    assert.equal(settings.logLevel, 'debug');
  });

  it('reads UIE_MODEL_DIR from the working directory', () => {
    const settings = loadSettings({}, { UIE_MODEL_DIR: 'my-model' });
    assert.equal(settings.modelDir, join(process.cwd(), 'my-model'));
    assert.equal(modelPath(settings), join(process.cwd(), 'my-model'));
  });

  it('reads the file modelDir from the package', () => {
    const settings = loadSettings({}, {});
    assert.equal(modelPath(settings), join(PACKAGE_ROOT, 'models/tiny'));
  });

  it('reads lists from env', () => {
    const env = { UIE_SCHEMA: '人物，地点, 人物', UIE_PLUGINS: 'time,custom' };
    const settings = loadSettings({}, env);
    assert.deepEqual(settings.schema, ['人物', '地点']);
    assert.deepEqual(settings.plugins, ['time', 'custom']);
  });

  it('prefers overrides to env', () => {
    const settings = loadSettings({ threads: 2 }, { UIE_THREADS: '4' });
    assert.equal(settings.threads, 2);
  });

  it('names the option of an invalid override', () => {
    assert.throws(
      () =>
        loadSettings({ threads: 'abc' }, { UIE_THREADS: '2' }, undefined, {
          threads: '--threads',
        }),
      {
        name: 'ConfigError',
        message:
          'threads (--threads): expected an integer from 0 to 256 in decimal digits (spaces around it are ignored), got "abc"',
      },
    );
  });

  it('names the variable when the option is valid', () => {
    assert.throws(
      () =>
        loadSettings({ threads: '2' }, { UIE_THRESHOLD: '2' }, undefined, {
          threads: '--threads',
        }),
      { message: /^threshold \(UIE_THRESHOLD\): expected/ },
    );
  });

  it('skips undefined overrides', () => {
    const settings = loadSettings({ threads: undefined }, { UIE_THREADS: '4' });
    assert.equal(settings.threads, 4);
  });

  it('names each env var', () => {
    assert.equal(envName('redisUrl'), 'REDIS_URL');
    assert.equal(envName('logLevel'), 'LOG_LEVEL');
    assert.equal(envName('chunkOverlap'), 'UIE_CHUNK_OVERLAP');
  });

  it('trims spaces around numbers', () => {
    const settings = loadSettings(
      {},
      { UIE_THREADS: ' 2 ', UIE_THRESHOLD: '\t0.25\n' },
    );
    assert.equal(settings.threads, 2);
    assert.equal(settings.threshold, 0.25);
  });

  it('reads decimal forms of numbers', () => {
    const settings = loadSettings(
      {},
      { UIE_THREADS: '+02', UIE_THRESHOLD: '5e-1', UIE_PROGRESS_SECONDS: '.5' },
    );
    assert.equal(settings.threads, 2);
    assert.equal(settings.threshold, 0.5);
    assert.equal(settings.progressSeconds, 0.5);
  });

  it('reads metrics settings from env', () => {
    const settings = loadSettings(
      {},
      {
        UIE_METRICS_PORT: '9464',
        UIE_METRICS_HOST: '127.0.0.1',
        UIE_HEALTH_STALL_SECONDS: '30',
      },
    );
    assert.equal(settings.metricsPort, 9464);
    assert.equal(settings.metricsHost, '127.0.0.1');
    assert.equal(settings.healthStallSeconds, 30);
  });

  it('reads taskTimeoutSeconds from env', () => {
    const read = (value: string) =>
      loadSettings({}, { UIE_TASK_TIMEOUT_SECONDS: value }).taskTimeoutSeconds;
    assert.equal(read('600'), 600);
    assert.equal(read('0.5'), 0.5);
    assert.equal(read('0'), 0);
  });
});

describe('redisTimeoutSeconds', () => {
  it('reads it from env', () => {
    const read = (value: string) =>
      loadSettings({}, { UIE_REDIS_TIMEOUT_SECONDS: value })
        .redisTimeoutSeconds;
    assert.equal(read('30'), 30);
    assert.equal(read('0.5'), 0.5);
  });

  for (const value of ['0', '3601', '10s']) {
    it(`rejects ${JSON.stringify(value)}`, () => {
      assert.equal(
        errorFor({ UIE_REDIS_TIMEOUT_SECONDS: value }),
        'redisTimeoutSeconds (UIE_REDIS_TIMEOUT_SECONDS): expected a number from 0.1 to 3600 in decimal notation ' +
          `(spaces around it are ignored), got ${JSON.stringify(value)}`,
      );
    });
  }
});

describe('when a value is invalid', () => {
  const cases: [string, NodeJS.ProcessEnv, string][] = [
    [
      'chunkChars below 8',
      { UIE_CHUNK_CHARS: '7', UIE_CHUNK_OVERLAP: '3' },
      'chunkChars (UIE_CHUNK_CHARS): expected 0 (the length the model and schema allow) or an integer from 8, got "7"',
    ],
    [
      'threads',
      { UIE_THREADS: '-1' },
      'threads (UIE_THREADS): expected an integer from 0 to 256 in decimal digits (spaces around it are ignored), got "-1"',
    ],
    [
      'fractional threads',
      { UIE_THREADS: '1.5' },
      'threads (UIE_THREADS): expected an integer from 0 to 256 in decimal digits (spaces around it are ignored), got "1.5"',
    ],
    [
      'threshold',
      { UIE_THRESHOLD: '2' },
      'threshold (UIE_THRESHOLD): expected a number from 0 to 1 in decimal notation (spaces around it are ignored), got "2"',
    ],
    [
      'non-numeric threshold',
      { UIE_THRESHOLD: 'high' },
      'threshold (UIE_THRESHOLD): expected a number from 0 to 1 in decimal notation (spaces around it are ignored), got "high"',
    ],
    [
      'negative runRetentionDays',
      { UIE_RUN_RETENTION_DAYS: '-1' },
      'runRetentionDays (UIE_RUN_RETENTION_DAYS): expected an integer from 0 to 3650 in decimal digits (spaces around it are ignored), got "-1"',
    ],
    [
      'fractional runRetentionDays',
      { UIE_RUN_RETENTION_DAYS: '0.5' },
      'runRetentionDays (UIE_RUN_RETENTION_DAYS): expected an integer from 0 to 3650 in decimal digits (spaces around it are ignored), got "0.5"',
    ],
    [
      'redisUrl',
      { REDIS_URL: 'http://x' },
      'redisUrl (REDIS_URL): expected a redis:// or rediss:// URL, got http://x/',
    ],
    [
      'queue',
      { UIE_QUEUE: 'a b' },
      'queue (UIE_QUEUE): expected letters, digits, "_", "." or "-" only, got "a b"',
    ],
    [
      'schema',
      { UIE_SCHEMA: ' , ' },
      'schema (UIE_SCHEMA): expected at least 1 name(s), got " , "',
    ],
    [
      'logLevel',
      { LOG_LEVEL: 'loud' },
      'logLevel (LOG_LEVEL): expected one of trace, debug, info, warn, error, fatal, silent, got "loud"',
    ],
    [
      'metricsPort above 65535',
      { UIE_METRICS_PORT: '65536' },
      'metricsPort (UIE_METRICS_PORT): expected an integer from 0 to 65535 in decimal digits (spaces around it are ignored), got "65536"',
    ],
    [
      'negative metricsPort',
      { UIE_METRICS_PORT: '-1' },
      'metricsPort (UIE_METRICS_PORT): expected an integer from 0 to 65535 in decimal digits (spaces around it are ignored), got "-1"',
    ],
    [
      'non-numeric metricsPort',
      { UIE_METRICS_PORT: 'http' },
      'metricsPort (UIE_METRICS_PORT): expected an integer from 0 to 65535 in decimal digits (spaces around it are ignored), got "http"',
    ],
    [
      'negative taskTimeoutSeconds',
      { UIE_TASK_TIMEOUT_SECONDS: '-1' },
      'taskTimeoutSeconds (UIE_TASK_TIMEOUT_SECONDS): expected a number from 0 to 86400 in decimal notation (spaces around it are ignored), got "-1"',
    ],
    [
      'taskTimeoutSeconds in minutes',
      { UIE_TASK_TIMEOUT_SECONDS: '2m' },
      'taskTimeoutSeconds (UIE_TASK_TIMEOUT_SECONDS): expected a number from 0 to 86400 in decimal notation (spaces around it are ignored), got "2m"',
    ],
    [
      'healthStallSeconds',
      { UIE_HEALTH_STALL_SECONDS: '0.5' },
      'healthStallSeconds (UIE_HEALTH_STALL_SECONDS): expected a number from 1 to 86400 in decimal notation (spaces around it are ignored), got "0.5"',
    ],
  ];
  for (const [name, env, message] of cases) {
    it(`rejects ${name}`, () => {
      assert.equal(errorFor(env), message);
    });
  }

  const THREADS_RULE =
    'threads (UIE_THREADS): expected an integer from 0 to 256 in decimal digits (spaces around it are ignored)';
  for (const value of ['0x2', '1e1', '0b1', '2.0', '2 2', 'Infinity']) {
    it(`rejects threads ${JSON.stringify(value)}`, () => {
      assert.equal(
        errorFor({ UIE_THREADS: value }),
        `${THREADS_RULE}, got ${JSON.stringify(value)}`,
      );
    });
  }

  it('rejects a hexadecimal threshold', () => {
    assert.equal(
      errorFor({ UIE_THRESHOLD: '0x1' }),
      'threshold (UIE_THRESHOLD): expected a number from 0 to 1 in decimal notation (spaces around it are ignored), got "0x1"',
    );
  });

  it('rejects a threads override "0x2"', () => {
    assert.throws(() => loadSettings({ threads: '0x2' }, {}), {
      name: 'ConfigError',
      message: `${THREADS_RULE}, got "0x2"`,
    });
  });

  it('rejects an empty schema override', () => {
    assert.throws(() => loadSettings({ schema: '' }, {}), {
      name: 'ConfigError',
      message: 'schema (UIE_SCHEMA): expected at least 1 name(s), got ""',
    });
  });

  it('rejects a negative threads override', () => {
    assert.throws(() => loadSettings({ threads: -1 }, {}), {
      name: 'ConfigError',
      message:
        'threads (UIE_THREADS): expected an integer from 0 to 256 in decimal digits (spaces around it are ignored), got -1',
    });
  });

  it('rejects a fractional metricsPort override', () => {
    assert.throws(() => loadSettings({ metricsPort: 9464.5 }, {}), {
      name: 'ConfigError',
      message:
        'metricsPort (UIE_METRICS_PORT): expected an integer from 0 to 65535 in decimal digits (spaces around it are ignored), got 9464.5',
    });
  });

  it('rejects a blank metricsHost override', () => {
    assert.throws(() => loadSettings({ metricsHost: ' ' }, {}), {
      name: 'ConfigError',
      message:
        'metricsHost (UIE_METRICS_HOST): expected a non-empty string, got " "',
    });
  });

  it('sets the error code', () => {
    assert.throws(() => loadSettings({}, { UIE_THREADS: '-1' }), {
      code: 'E_CONFIG',
    });
  });

  it('rejects overlap above half', () => {
    const env = { UIE_CHUNK_CHARS: '100', UIE_CHUNK_OVERLAP: '51' };
    const message = errorFor(env);
    assert.equal(
      message,
      'chunkOverlap (UIE_CHUNK_OVERLAP): expected at most 50, half of chunkChars (UIE_CHUNK_CHARS = 100), got 51',
    );
  });

  it('rejects overlap above half of a chunkChars override', () => {
    assert.throws(
      () => loadSettings({ chunkChars: '60' }, { UIE_CHUNK_OVERLAP: '31' }),
      {
        name: 'ConfigError',
        message:
          'chunkOverlap (UIE_CHUNK_OVERLAP): expected at most 30, half of chunkChars (UIE_CHUNK_CHARS = 60), got 31',
      },
    );
  });

  it('accepts overlap of exactly half', () => {
    const settings = loadSettings(
      {},
      { UIE_CHUNK_CHARS: '100', UIE_CHUNK_OVERLAP: '50' },
    );
    assert.equal(settings.chunkOverlap, 50);
  });
});

describe('when redisUrl has a password', () => {
  it('redacts it in the error', () => {
    const message = errorFor({ REDIS_URL: 'http://user:s3cret@x:6379' });
    assert.equal(message.includes('s3cret'), false, message);
    assert.equal(
      message,
      'redisUrl (REDIS_URL): expected a redis:// or rediss:// URL, got http://user:***@x:6379/',
    );
  });

  it('keeps it in the settings', () => {
    const url = 'redis://:s3cret@cache:6379/0';
    assert.equal(loadSettings({}, { REDIS_URL: url }).redisUrl, url);
  });

  it('accepts percent-encoded characters', () => {
    const url = 'rediss://reader:p%40ss%2Fs3cret%25@cache:6380';
    assert.equal(loadSettings({}, { REDIS_URL: url }).redisUrl, url);
  });

  it('rejects an unencoded "/" in it', () => {
    const message = errorFor({ REDIS_URL: 'rediss://reader:12/s3cret@cache' });
    assert.equal(
      message,
      'redisUrl (REDIS_URL): expected a user name and password with "%", "@", "/", "?" and "#" percent-encoded as %25, %40, %2F, %3F and %23, got rediss://***',
    );
  });

  it('rejects a "%" that starts no escape', () => {
    const message = errorFor({ REDIS_URL: 'redis://:50%s3cret@cache:6379' });
    assert.equal(
      message,
      'redisUrl (REDIS_URL): expected a user name and password with "%", "@", "/", "?" and "#" percent-encoded as %25, %40, %2F, %3F and %23, got redis://:***@cache:6379',
    );
  });
});

describe('redactUrl', () => {
  const cases: [string, string][] = [
    ['redis://:s3cret@cache:6379/0', 'redis://:***@cache:6379/0'],
    ['rediss://user:s3cret@cache:6380', 'rediss://user:***@cache:6380'],
    ['redis://127.0.0.1:6379', 'redis://127.0.0.1:6379'],
    ['not a url :s3cret@', '<invalid URL>'],
    ['rediss://:p%40ss%2Fs3cret@cache:6380', 'rediss://:***@cache:6380'],
    ['redis://:p@ss@s3cret@cache:6379', 'redis://:***@cache:6379'],
    ['rediss://reader@cache:6380', 'rediss://reader@cache:6380'],
    ['redis://reader:12/s3cret@cache', 'redis://***'],
    ['redis://reader:12?s3cret@cache', 'redis://***'],
    ['redis://reader:12#s3cret@cache', 'redis://***'],
    [
      'redis://cache:6379/0?password=s3cret',
      'redis://cache:6379/0?password=***',
    ],
    [
      'redis://cache?db=1&sentinelPassword=s3cret',
      'redis://cache?db=1&sentinelPassword=***',
    ],
  ];
  for (const [url, expected] of cases) {
    it(`redacts ${url}`, () => {
      assert.equal(redactUrl(url), expected);
    });
  }
});

import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import { ConfigError } from '../errors/errors.js';

/** Every setting of uie-batch; defaults live in config/default.json. */
export interface Settings {
  /** Redis connection URL; `rediss://` for TLS, password in the URL. */
  redisUrl: string;
  /**
   * Seconds a command that needs Redis waits at start for its reply to PING
   * before it fails. A worker without `--exit-when-drained` keeps waiting,
   * but logs a warning when Redis accepted the connection and has not
   * replied for this long.
   */
  redisTimeoutSeconds: number;
  /** BullMQ queue name. */
  queue: string;
  /** Prefix of every Redis key, so several deployments can share one Redis. */
  prefix: string;
  /** Model folder with model.json; relative paths start at the package root. */
  modelDir: string;
  /** Labels to extract; each label is a prompt. */
  schema: string[];
  /** Pool threads per process; 0 means the CPUs this process may use. */
  threads: number;
  /** Maximum chunk length in characters; 0 derives it from the model. */
  chunkChars: number;
  /** Overlap, in characters, of windows cut inside a long sentence. */
  chunkOverlap: number;
  /** Chunks carried by one queue job. */
  chunksPerJob: number;
  /** Minimum start and end probability of a model span. */
  threshold: number;
  /** Maximum rows × padded length of one ONNX run, in tokens. */
  batchTokens: number;
  /**
   * Rule plugins to load: built-in names, or paths of ES modules (relative
   * to the working directory) whose default export is a plugin.
   */
  plugins: string[];
  /** Heap limit of each pool thread in MiB; 0 keeps Node's default. */
  threadMemoryMb: number;
  /**
   * Seconds one pool task may take before it fails and its thread is
   * replaced; 0 means no limit.
   *
   * The default of 120 s rests on a measurement with models/tiny 0.5.0 on
   * a 2-core VM that another job kept busy. A task of 32 chunks of 245
   * characters and 4 labels took 0.2 s, so one of 128, the task size of
   * `extract` and the default chunksPerJob, takes about 0.8 s (an estimate
   * from those figures). A task of 1,000 such chunks, the chunksPerJob
   * maximum, took 5.1 s, so the default leaves over 20 times that for
   * slower machines and models. It also stays below the 300 s default of
   * healthStallSeconds, so a worker fails a stuck task before /health
   * reports a stall.
   */
  taskTimeoutSeconds: number;
  /** Folder for run results, relative to the working directory. */
  outputDir: string;
  /** Attempts per job before its documents are marked failed. */
  attempts: number;
  /**
   * Days a run's Redis records are kept after the run is exported; 0 keeps
   * them until `uie-batch forget`.
   */
  runRetentionDays: number;
  /** Seconds a stopping worker waits for active jobs. */
  shutdownGraceSeconds: number;
  /** Seconds between progress log lines. */
  progressSeconds: number;
  /** TCP port of a worker's /metrics and /health server, or 0 for no server. */
  metricsPort: number;
  /** Address the metrics server listens on. */
  metricsHost: string;
  /**
   * Seconds a worker may start and finish no job while jobs wait before
   * /health reports it unhealthy.
   */
  healthStallSeconds: number;
  /** pino log level. */
  logLevel: string;
}

/** Root of the installed package, where config/ and models/ live. */
export const PACKAGE_ROOT = resolve(
  dirname(fileURLToPath(import.meta.url)),
  '../../..',
);

const ENV_NAMES: Record<keyof Settings, string> = {
  redisUrl: 'REDIS_URL',
  redisTimeoutSeconds: 'UIE_REDIS_TIMEOUT_SECONDS',
  queue: 'UIE_QUEUE',
  prefix: 'UIE_PREFIX',
  modelDir: 'UIE_MODEL_DIR',
  schema: 'UIE_SCHEMA',
  threads: 'UIE_THREADS',
  chunkChars: 'UIE_CHUNK_CHARS',
  chunkOverlap: 'UIE_CHUNK_OVERLAP',
  chunksPerJob: 'UIE_CHUNKS_PER_JOB',
  threshold: 'UIE_THRESHOLD',
  batchTokens: 'UIE_BATCH_TOKENS',
  plugins: 'UIE_PLUGINS',
  threadMemoryMb: 'UIE_THREAD_MEMORY_MB',
  taskTimeoutSeconds: 'UIE_TASK_TIMEOUT_SECONDS',
  outputDir: 'UIE_OUTPUT_DIR',
  attempts: 'UIE_ATTEMPTS',
  runRetentionDays: 'UIE_RUN_RETENTION_DAYS',
  shutdownGraceSeconds: 'UIE_SHUTDOWN_GRACE_SECONDS',
  progressSeconds: 'UIE_PROGRESS_SECONDS',
  metricsPort: 'UIE_METRICS_PORT',
  metricsHost: 'UIE_METRICS_HOST',
  healthStallSeconds: 'UIE_HEALTH_STALL_SECONDS',
  logLevel: 'LOG_LEVEL',
};

/**
 * Settings that keep deployments apart in a shared Redis. An empty
 * variable, as from an unset shell variable, stops the start for these:
 * falling back to the default would join another deployment's queue.
 * Other empty variables count as unset.
 */
const ISOLATING_SETTINGS = new Set<keyof Settings>(['queue', 'prefix']);

/** Name of the environment variable that overrides a setting. */
export function envName(key: keyof Settings): string {
  return ENV_NAMES[key];
}

/**
 * Loads config/default.json, applies environment variables, then overrides
 * (from command-line flags), and validates the result.
 *
 * @param overrideNames - how an error names the source of an override,
 *   such as `--threads`. Other keys are named by their environment variable.
 * @throws ConfigError naming the key, its source and the invalid value
 */
export function loadSettings(
  overrides: Partial<Record<keyof Settings, unknown>> = {},
  env: NodeJS.ProcessEnv = process.env,
  file = join(PACKAGE_ROOT, 'config/default.json'),
  overrideNames: Partial<Record<keyof Settings, string>> = {},
): Settings {
  const defaults = readDefaults(file);
  const raw: Record<string, unknown> = { ...defaults };
  for (const key of Object.keys(ENV_NAMES) as (keyof Settings)[]) {
    const value = env[ENV_NAMES[key]];
    if (value === '' && ISOLATING_SETTINGS.has(key)) {
      throw new ConfigError(
        `${key} (${ENV_NAMES[key]}): set but empty; give a name, or unset it to use the default ${JSON.stringify(defaults[key])}`,
      );
    }
    if (value === undefined || value === '') continue;
    // A path typed in a shell is relative to its working directory, as
    // with --model. A path in the settings file is relative to the package.
    raw[key] = key === 'modelDir' ? resolve(value) : value;
  }
  const sources: Partial<Record<keyof Settings, string>> = {};
  for (const [key, value] of Object.entries(overrides)) {
    if (value === undefined) continue;
    raw[key] = value;
    const name = overrideNames[key as keyof Settings];
    if (name !== undefined) sources[key as keyof Settings] = name;
  }
  shownSources = sources;
  try {
    return validate(raw);
  } finally {
    shownSources = {};
  }
}

/**
 * Reads the settings file.
 *
 * @throws ConfigError naming the file when it cannot be read or parsed
 */
function readDefaults(path: string): Settings {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(
      `${path}: cannot read the settings file: ${(err as Error).message}`,
    );
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new ConfigError(
      `${path}: invalid JSON: ${(err as Error).message}; fix the file or restore it from the package`,
    );
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new ConfigError(`${path}: expected a JSON object of settings`);
  }
  // A misspelt key would otherwise leave its setting at the default unnoticed.
  const unknown = Object.keys(parsed).filter((key) => !(key in ENV_NAMES));
  if (unknown.length > 0) {
    throw new ConfigError(
      `${path}: unknown setting ${unknown.map((k) => JSON.stringify(k)).join(', ')}; known settings: ${Object.keys(ENV_NAMES).join(', ')}`,
    );
  }
  return parsed as Settings;
}

// Sources of the overrides being validated, for fail(). Set and reset by
// loadSettings around the synchronous validate().
let shownSources: Partial<Record<keyof Settings, string>> = {};

function validate(raw: Record<string, unknown>): Settings {
  const settings: Settings = {
    redisUrl: redisUrl(raw.redisUrl),
    redisTimeoutSeconds: number(
      'redisTimeoutSeconds',
      raw.redisTimeoutSeconds,
      0.1,
      3600,
    ),
    queue: name('queue', raw.queue),
    prefix: name('prefix', raw.prefix),
    modelDir: text('modelDir', raw.modelDir),
    schema: labels(raw.schema),
    threads: integer('threads', raw.threads, 0, 256),
    chunkChars: integer('chunkChars', raw.chunkChars, 0, 100_000),
    chunkOverlap: integer('chunkOverlap', raw.chunkOverlap, 0, 1000),
    chunksPerJob: integer('chunksPerJob', raw.chunksPerJob, 1, 1000),
    threshold: number('threshold', raw.threshold, 0, 1),
    batchTokens: integer('batchTokens', raw.batchTokens, 64, 1_000_000),
    plugins: list('plugins', raw.plugins, 0),
    threadMemoryMb: integer('threadMemoryMb', raw.threadMemoryMb, 0, 1_000_000),
    taskTimeoutSeconds: number(
      'taskTimeoutSeconds',
      raw.taskTimeoutSeconds,
      0,
      86_400,
    ),
    outputDir: text('outputDir', raw.outputDir),
    attempts: integer('attempts', raw.attempts, 1, 100),
    runRetentionDays: integer(
      'runRetentionDays',
      raw.runRetentionDays,
      0,
      3650,
    ),
    shutdownGraceSeconds: number(
      'shutdownGraceSeconds',
      raw.shutdownGraceSeconds,
      0,
      3600,
    ),
    progressSeconds: number(
      'progressSeconds',
      raw.progressSeconds,
      0.1,
      86_400,
    ),
    metricsPort: integer('metricsPort', raw.metricsPort, 0, 65_535),
    metricsHost: text('metricsHost', raw.metricsHost),
    healthStallSeconds: number(
      'healthStallSeconds',
      raw.healthStallSeconds,
      1,
      86_400,
    ),
    logLevel: oneOf('logLevel', raw.logLevel, [
      'trace',
      'debug',
      'info',
      'warn',
      'error',
      'fatal',
      'silent',
    ]),
  };
  // chunkText needs 8 characters of text for a window to advance.
  if (settings.chunkChars > 0 && settings.chunkChars < 8) {
    fail(
      'chunkChars',
      '0 (the length the model and schema allow) or an integer from 8',
      raw.chunkChars,
    );
  }
  // With chunkChars 0 the model sets the chunk length, and planChunks
  // checks chunkOverlap against it.
  if (settings.chunkChars > 0) {
    checkChunkOverlap(
      settings.chunkOverlap,
      settings.chunkChars,
      `chunkChars (${ENV_NAMES.chunkChars} = ${settings.chunkChars})`,
    );
  }
  return settings;
}

/**
 * Checks that chunkOverlap is at most half the chunk length, as chunkText
 * requires.
 *
 * @param chunkLength - maximum chunk length in characters
 * @param lengthName - the chunk length's name and value, for the message
 * @throws ConfigError naming chunkOverlap and its environment variable
 */
export function checkChunkOverlap(
  overlap: number,
  chunkLength: number,
  lengthName: string,
): void {
  if (overlap * 2 <= chunkLength) return;
  throw new ConfigError(
    `chunkOverlap (${ENV_NAMES.chunkOverlap}): expected at most ${Math.floor(chunkLength / 2)}, half of ${lengthName}, got ${overlap}`,
  );
}

/** Absolute model folder: a relative modelDir starts at the package root. */
export function modelPath(settings: Settings): string {
  return isAbsolute(settings.modelDir)
    ? settings.modelDir
    : resolve(PACKAGE_ROOT, settings.modelDir);
}

/**
 * Threads to use when `threads` is 0: the CPU quota of this container's
 * cgroup when one is set, else the CPUs Node.js reports.
 */
export function resolveThreads(settings: Settings): number {
  if (settings.threads > 0) return settings.threads;
  const cpus = availableParallelism();
  try {
    const [quota, period] = readFileSync('/sys/fs/cgroup/cpu.max', 'utf8')
      .trim()
      .split(/\s+/);
    if (quota !== 'max') {
      return Math.max(
        1,
        Math.min(cpus, Math.floor(Number(quota) / Number(period))),
      );
    }
  } catch {
    // No cgroup v2 CPU limit readable here; fall back to the CPU count.
  }
  return cpus;
}

/**
 * Returns the Redis URL with its password replaced by ***, for logs and
 * messages. Query parameters named like `password` are hidden too, because
 * ioredis reads options such as `?password=` from the query. The user name
 * stays visible, as it names an ACL user and is not a secret.
 */
export function redactUrl(url: string): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return '<invalid URL>';
  }
  if (hasSplitUserInfo(u)) return `${u.protocol}//***`;
  if (u.password) u.password = '***';
  for (const key of [...u.searchParams.keys()]) {
    if (/password/i.test(key)) u.searchParams.set(key, '***');
  }
  return u.toString();
}

/**
 * Tells whether an "@" follows the host. An unencoded "/", "?" or "#" in a
 * password ends the host early and moves the rest of the password, up to
 * its "@", into the path, query or fragment.
 */
function hasSplitUserInfo(u: URL): boolean {
  return (u.pathname + u.search + u.hash).includes('@');
}

function fail(key: string, rule: string, value: unknown): never {
  // Only a string can carry a password to redact.
  const shown =
    key === 'redisUrl' && typeof value === 'string'
      ? redactUrl(value)
      : JSON.stringify(value);
  throw new ConfigError(
    `${key} (${shownSources[key as keyof Settings] ?? ENV_NAMES[key as keyof Settings]}): expected ${rule}, got ${shown}`,
  );
}

function text(key: string, value: unknown): string {
  if (typeof value !== 'string' || value.trim() === '')
    fail(key, 'a non-empty string', value);
  return value.trim();
}

function name(key: string, value: unknown): string {
  const s = text(key, value);
  if (!/^[A-Za-z0-9_.-]+$/.test(s))
    fail(key, 'letters, digits, "_", "." or "-" only', value);
  return s;
}

function redisUrl(value: unknown): string {
  const s = text('redisUrl', value);
  let u: URL;
  try {
    u = new URL(s);
  } catch {
    fail('redisUrl', 'a URL such as redis://127.0.0.1:6379', value);
  }
  if (u.protocol !== 'redis:' && u.protocol !== 'rediss:') {
    fail('redisUrl', 'a redis:// or rediss:// URL', value);
  }
  if (hasSplitUserInfo(u) || !decodes(u.username) || !decodes(u.password)) {
    fail(
      'redisUrl',
      'a user name and password with "%", "@", "/", "?" and "#" ' +
        'percent-encoded as %25, %40, %2F, %3F and %23',
      value,
    );
  }
  return s;
}

// ioredis decodes the user name and password with decodeURIComponent, which
// throws on a "%" that does not start an escape.
function decodes(text: string): boolean {
  try {
    decodeURIComponent(text);
    return true;
  } catch {
    return false;
  }
}

// Values from the environment and the command line are strings. Number()
// would also read "0x10", "0b1", "Infinity" and, for an integer, "1e1", so
// only decimal notation is parsed. Spaces around a value are trimmed, as for
// text and list settings.
const DECIMAL_INTEGER = /^[+-]?[0-9]+$/;
const DECIMAL_NUMBER = /^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?$/;
const SPACES_IGNORED = '(spaces around it are ignored)';

function number(key: string, value: unknown, min: number, max: number): number {
  const n = parseDecimal(value, DECIMAL_NUMBER);
  if (typeof n !== 'number' || !Number.isFinite(n) || n < min || n > max) {
    fail(
      key,
      `a number from ${min} to ${max} in decimal notation ${SPACES_IGNORED}`,
      value,
    );
  }
  return n;
}

function integer(
  key: string,
  value: unknown,
  min: number,
  max: number,
): number {
  const n = parseDecimal(value, DECIMAL_INTEGER);
  if (typeof n !== 'number' || !Number.isInteger(n) || n < min || n > max) {
    fail(
      key,
      `an integer from ${min} to ${max} in decimal digits ${SPACES_IGNORED}`,
      value,
    );
  }
  return n;
}

/**
 * Parses a string that matches pattern once trimmed, or returns NaN. A value
 * that is not a string, such as a number from config/default.json, is
 * returned as it is.
 */
function parseDecimal(value: unknown, pattern: RegExp): unknown {
  if (typeof value !== 'string') return value;
  const trimmed = value.trim();
  return pattern.test(trimmed) ? Number(trimmed) : NaN;
}

function list(key: string, value: unknown, minLength: number): string[] {
  const items =
    typeof value === 'string'
      ? value
          .split(/[,，]/)
          .map((s) => s.trim())
          .filter(Boolean)
      : value;
  if (
    !Array.isArray(items) ||
    items.some((s) => typeof s !== 'string' || s.trim() === '')
  ) {
    fail(key, 'a comma-separated list of names', value);
  }
  if (items.length < minLength)
    fail(key, `at least ${minLength} name(s)`, value);
  return [...new Set(items.map((s: string) => s.trim()))];
}

// Characters that separate items in other lists. A label with one is most
// likely two labels run together, which the model would read as one prompt.
export const LABEL_SEPARATORS = /[;；、|]/u;

function labels(value: unknown): string[] {
  const items = list('schema', value, 1);
  for (const label of items) {
    const separator = LABEL_SEPARATORS.exec(label)?.[0];
    if (separator !== undefined) {
      throw new ConfigError(
        `schema (${ENV_NAMES.schema}): label ${JSON.stringify(label)} contains "${separator}"; ` +
          `separate labels with commas, as in ${label.split(LABEL_SEPARATORS).join(',')}`,
      );
    }
  }
  return items;
}

function oneOf(key: string, value: unknown, options: string[]): string {
  if (typeof value !== 'string' || !options.includes(value)) {
    fail(key, `one of ${options.join(', ')}`, value);
  }
  return value;
}

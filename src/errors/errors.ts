/** A model folder that is missing, incomplete or damaged. */
export class ModelError extends Error {
  readonly code = 'E_MODEL';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ModelError';
  }
}

/** A setting with a value of the wrong type or out of range. */
export class ConfigError extends Error {
  readonly code = 'E_CONFIG';
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

/** Input that cannot be read at all, such as a missing file or wrong encoding. */
export class InputError extends Error {
  readonly code = 'E_INPUT';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'InputError';
  }
}

/** An export of a run that still has documents with chunks without results. */
export class RunNotFinishedError extends Error {
  readonly code = 'E_RUN_NOT_FINISHED';
  constructor(message: string) {
    super(message);
    this.name = 'RunNotFinishedError';
  }
}

/** Redis did not reply to a command that must not wait for it. */
export class RedisUnavailableError extends Error {
  readonly code = 'E_REDIS';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'RedisUnavailableError';
  }
}

/** A command line that names an unknown command or option, or lacks one. */
export class UsageError extends Error {
  readonly code = 'E_USAGE';
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/**
 * A pool task that ran past its time limit (taskTimeoutSeconds) inside a
 * rule plugin's `find`. A plugin must be pure, so the same texts would run
 * as long again. Callers therefore run the task's chunks alone at once,
 * and fail a chunk that times out alone for good, without the retries
 * that a timeout in the model gets.
 */
export class PluginTimeoutError extends Error {
  readonly code = 'E_PLUGIN_TIMEOUT';
  constructor(message: string) {
    super(message);
    this.name = 'PluginTimeoutError';
  }
}

/**
 * Returns whether a failed pool task would fail the same way on every
 * attempt, so that a retry only costs time: a RangeError for a text too
 * long for the model, or a {@link PluginTimeoutError}.
 */
export function failsEveryAttempt(err: unknown): boolean {
  return err instanceof RangeError || err instanceof PluginTimeoutError;
}

const USER_ERROR_CLASSES = [
  ConfigError,
  InputError,
  ModelError,
  RedisUnavailableError,
  RunNotFinishedError,
  UsageError,
];

/**
 * Returns whether the user can act on an error from its message alone (bad
 * input, option, setting or model folder, a busy or unfinished run, Redis
 * down), unlike a bug, whose stack is worth logging. Option checks throw
 * RangeError by this project's convention, so every RangeError counts as
 * the user's.
 *
 * NOTE: a RangeError of the JavaScript engine, such as a stack overflow,
 * is taken for the user's too, so its stack is not logged.
 */
export function isUserError(err: unknown): boolean {
  if (err instanceof RangeError) return true;
  return USER_ERROR_CLASSES.some((type) => err instanceof type);
}

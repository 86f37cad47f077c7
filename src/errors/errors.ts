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

import {
  createWriteStream,
  existsSync,
  realpathSync,
  rmSync,
  statSync,
  type WriteStream,
} from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import { once } from 'node:events';
import { basename, dirname, join, resolve } from 'node:path';

import { InputError } from '../errors/errors.js';

/**
 * An output file written under a temporary name beside its target and
 * renamed into place on commit, so a failed or interrupted run never
 * replaces an earlier complete file with a partial one.
 */
export class AtomicFile {
  readonly stream: WriteStream;
  private readonly temp: string;

  /**
   * @throws InputError when the folder is missing or the target is one of
   *   the inputs
   */
  constructor(
    readonly path: string,
    inputs: string[] = [],
  ) {
    const dir = dirname(resolve(path));
    if (!existsSync(dir) || !statSync(dir).isDirectory()) {
      throw new InputError(`output folder not found: ${dir}; create it first`);
    }
    const target = canonical(path);
    if (inputs.some((input) => canonical(input) === target)) {
      throw new InputError(
        `output ${path} is also an input; choose another output file`,
      );
    }
    this.temp = join(dir, `.${basename(path)}.partial-${process.pid}`);
    this.stream = createWriteStream(this.temp);
    ACTIVE.add(this);
  }

  /** Writes text, waiting when the stream's buffer is full. */
  async write(text: string): Promise<void> {
    if (!this.stream.write(text)) await once(this.stream, 'drain');
  }

  /** Closes the file and renames it onto the target. */
  async commit(): Promise<void> {
    await this.close();
    await rename(this.temp, this.path);
    ACTIVE.delete(this);
  }

  /** Closes and deletes the temporary file; the target is left as it was. */
  async abort(): Promise<void> {
    await this.close();
    await rm(this.temp, { force: true });
    ACTIVE.delete(this);
  }

  /** Deletes the temporary file at once, for a process that is exiting. */
  abortSync(): void {
    this.stream.destroy();
    rmSync(this.temp, { force: true });
    ACTIVE.delete(this);
  }

  private async close(): Promise<void> {
    if (this.stream.closed) return;
    this.stream.end();
    await once(this.stream, 'close');
  }
}

const ACTIVE = new Set<AtomicFile>();

/** Deletes the temporary files of every uncommitted output; for signal handlers. */
export function abortAllOutputs(): void {
  for (const file of [...ACTIVE]) file.abortSync();
}

function canonical(path: string): string {
  const abs = resolve(path);
  try {
    return realpathSync(abs);
  } catch {
    return abs;
  }
}

import { rm } from 'node:fs/promises';

import { InputError } from '../errors/errors.js';
import {
  OutputFile,
  resolveOutputTarget,
  type OutputOptions,
  type OutputTarget,
} from './output-file.js';

/**
 * The rejects file of an extract. A regular file is opened on the first
 * rejected row, so a run that rejects no row writes no file. Its commit then
 * deletes a file of that name left by an earlier run, which would otherwise
 * pass for the rejects of this one. A FIFO or device is opened at once and
 * closed at the end, because its reader waits for the end of file.
 */
export class RejectsFile {
  private file?: OutputFile;

  private constructor(
    private readonly path: string,
    private readonly options: OutputOptions,
    private readonly target: OutputTarget,
  ) {}

  /**
   * Resolves the path, and opens it unless it is a regular file.
   *
   * @throws InputError when the path cannot be used or opened
   */
  static async open(
    path: string,
    options: OutputOptions = {},
  ): Promise<RejectsFile> {
    const target = resolveOutputTarget(path, options);
    const rejects = new RejectsFile(path, options, target);
    if (target.kind !== 'file') {
      rejects.file = await OutputFile.open(path, options);
    }
    return rejects;
  }

  /**
   * Writes text, opening the file first if this is the first write.
   *
   * @throws InputError when the file cannot be opened or written
   */
  async write(text: string): Promise<void> {
    this.file ??= await OutputFile.open(this.path, this.options);
    await this.file.write(text);
  }

  /**
   * Renames the written file onto the path, or deletes an earlier file
   * there when nothing was written.
   *
   * @throws InputError when the rename or the deletion failed
   */
  async commit(): Promise<void> {
    if (this.file) return this.file.commit();
    if (this.target.kind !== 'file') return;
    try {
      await rm(this.target.path, { force: true });
    } catch (err) {
      throw new InputError(
        `${this.options.label ?? this.path}: cannot delete the rejects file of an earlier run: ${(err as Error).message}. ` +
          'This run rejected no row, so delete that file by hand or make its folder writable',
        { cause: err },
      );
    }
  }

  /**
   * Closes the file and deletes its temporary file, so an earlier file at the
   * path stays as it was.
   */
  async abort(): Promise<void> {
    await this.file?.abort();
  }
}

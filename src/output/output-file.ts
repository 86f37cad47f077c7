import {
  accessSync,
  constants,
  createWriteStream,
  fstatSync,
  lstatSync,
  openSync,
  readlinkSync,
  realpathSync,
  statSync,
  unlinkSync,
  type Stats,
} from 'node:fs';
import { open, rename, rm, type FileHandle } from 'node:fs/promises';
import { once } from 'node:events';
import { Socket } from 'node:net';
import { basename, dirname, join, resolve } from 'node:path';
import type { Writable } from 'node:stream';

import { InputError } from '../errors/errors.js';

/**
 * Destination of an output once its path is resolved. A `file` is a regular
 * file, new or existing, at the end of any symbolic links. It is replaced by
 * renaming a temporary file onto it, so the links stay. A `device` is a FIFO
 * or device, opened and written in place. A `descriptor` is an open file
 * descriptor of this process: 1 for `-` and /dev/stdout, N for /dev/fd/N.
 */
export type OutputTarget =
  | { kind: 'file'; path: string }
  | { kind: 'device'; path: string }
  | { kind: 'descriptor'; fd: number };

/** Options of {@link resolveOutputTarget} and {@link OutputFile.open}. */
export interface OutputOptions {
  /** Files the same command reads, which the output must not replace. */
  inputs?: string[];
  /**
   * Name of the output in error messages, such as `-o out.jsonl`.
   * @defaultValue the path
   */
  label?: string;
}

// Linux follows at most 40 symbolic links in one path (path_resolution(7)).
const MAX_LINK_HOPS = 40;

// Like gawk (manual, "Special Caveats"), uie-batch writes these names to the
// descriptor itself instead of reopening the file behind it, which would
// truncate a file that stdout is appended to.
const STANDARD_STREAMS: Record<string, number> = {
  '/dev/stdin': 0,
  '/dev/stdout': 1,
  '/dev/stderr': 2,
};

/**
 * Resolves an output path without opening it: `-` is standard output,
 * symbolic links are followed, and an existing FIFO or device is written in
 * place.
 *
 * @throws InputError when the path is a directory or a socket, its folder is
 *   missing or not writable, the links loop, or it is one of the inputs
 */
export function resolveOutputTarget(
  path: string,
  options: OutputOptions = {},
): OutputTarget {
  const label = options.label ?? path;
  if (path === '-') return descriptorTarget(1, label);
  let current = resolve(path);
  for (let hop = 0; hop <= MAX_LINK_HOPS; hop++) {
    const fd = descriptorNumber(current);
    if (fd !== undefined) return descriptorTarget(fd, label);
    const stats = lstatIfExists(current, label);
    if (!stats) return newFileTarget(current, label, options.inputs ?? []);
    if (!stats.isSymbolicLink()) {
      return existingTarget(current, stats, label, options.inputs ?? []);
    }
    // Links under /proc name pipes and sockets as "pipe:[1234]", which is no
    // path, so such a link is opened as it is.
    if (current.startsWith('/proc/')) {
      return existingTarget(current, statOrThrow(current, label), label, []);
    }
    current = resolve(dirname(current), readlinkSync(current));
  }
  throw new InputError(
    `${label}: too many levels of symbolic links; check where the link points`,
  );
}

/**
 * An open output. A regular file is written under a temporary name beside
 * it and renamed onto it on commit, so a failed or interrupted run never
 * replaces an earlier complete file with a partial one. Standard output, a
 * FIFO or a device cannot be replaced, so it is written in place and an
 * abort leaves what was already written.
 */
export class OutputFile {
  private failure?: Error;
  // Set once commit() starts the rename of the temporary file.
  private renaming = false;

  private constructor(
    readonly target: OutputTarget,
    private readonly label: string,
    private readonly stream: Writable,
    // False for descriptors the process keeps using, such as stdout.
    private readonly ownsStream: boolean,
  ) {
    // Without a listener, a failed write would crash the process.
    stream.on('error', (err: Error) => (this.failure ??= err));
    ACTIVE.add(this);
  }

  /**
   * Resolves an output path and opens it for writing. Opening a FIFO waits
   * until a reader opens it too.
   *
   * @throws InputError when the path cannot be used or opened; the message
   *   names the path and the reason
   */
  static async open(
    path: string,
    options: OutputOptions = {},
  ): Promise<OutputFile> {
    const label = options.label ?? path;
    const target = resolveOutputTarget(path, options);
    if (target.kind === 'file') {
      const temp = tempPathFor(target.path);
      let fd: number;
      try {
        fd = openSync(temp, 'w');
      } catch (err) {
        throw openError(err, label, temp);
      }
      const stream = createWriteStream(temp, { fd });
      return new OutputFile(target, label, stream, true);
    }
    if (target.kind === 'device' && isFifo(target.path)) {
      return new OutputFile(
        target,
        label,
        await openFifo(target.path, label),
        true,
      );
    }
    if (target.kind === 'device') {
      let handle: FileHandle;
      try {
        // O_WRONLY without O_CREAT: a FIFO removed meanwhile is an error,
        // not a new regular file.
        handle = await open(target.path, constants.O_WRONLY);
      } catch (err) {
        throw openError(err, label, target.path);
      }
      const stream = createWriteStream(target.path, { fd: handle });
      return new OutputFile(target, label, stream, true);
    }
    return new OutputFile(target, label, ...descriptorStream(target.fd));
  }

  /** Whether an abort leaves the target as it was before the run. */
  get atomic(): boolean {
    return this.target.kind === 'file';
  }

  /**
   * Writes text, waiting when the stream's buffer is full.
   *
   * @throws InputError when an earlier or this write failed
   */
  async write(text: string): Promise<void> {
    this.throwIfFailed();
    if (this.target.kind === 'device') WRITTEN_DEVICES.add(this.target.path);
    if (this.stream.write(text)) return;
    try {
      await once(this.stream, 'drain');
    } catch {
      this.throwIfFailed();
    }
  }

  /**
   * Flushes and closes the output; a regular file is then renamed onto the
   * target.
   *
   * @throws InputError when a write or the rename failed
   */
  async commit(): Promise<void> {
    await this.finish();
    this.throwIfFailed();
    if (this.target.kind === 'file') {
      const temp = tempPathFor(this.target.path);
      this.renaming = true;
      try {
        await rename(temp, this.target.path);
      } catch (err) {
        throw new InputError(
          `${this.label}: cannot rename ${temp} to ${this.target.path}: ${reason(err)}`,
          { cause: err },
        );
      }
    }
    ACTIVE.delete(this);
  }

  /** Closes the output and deletes a temporary file; the target stays as it was. */
  async abort(): Promise<void> {
    await this.finish();
    if (this.target.kind === 'file') {
      await rm(tempPathFor(this.target.path), { force: true });
    }
    ACTIVE.delete(this);
  }

  /**
   * Deletes the temporary file at once, for a process that is exiting.
   *
   * @returns true when a rename started by commit() had already replaced
   *   the target, so the new output is in place
   */
  abortSync(): boolean {
    if (this.ownsStream) this.stream.destroy();
    ACTIVE.delete(this);
    if (this.target.kind !== 'file') return false;
    try {
      // A rename in flight and this unlink race for the temporary name, and
      // exactly one of them finds it.
      unlinkSync(tempPathFor(this.target.path));
      return false;
    } catch (err) {
      const notFound = (err as NodeJS.ErrnoException).code === 'ENOENT';
      return notFound && this.renaming;
    }
  }

  private async finish(): Promise<void> {
    if (!this.ownsStream) {
      // The callback runs once the bytes before it are written, or failed.
      await new Promise<void>((done) => this.stream.write('', () => done()));
      return;
    }
    if (this.stream.closed) return;
    const closed = once(this.stream, 'close').catch(() => undefined);
    this.stream.end();
    await closed;
  }

  private throwIfFailed(): void {
    if (!this.failure) return;
    const err = this.failure as NodeJS.ErrnoException;
    const hint =
      err.code === 'EPIPE' ? '; the program reading the output exited' : '';
    throw new InputError(`${this.label}: write failed: ${reason(err)}${hint}`, {
      cause: err,
    });
  }
}

const ACTIVE = new Set<OutputFile>();

// Paths of FIFOs and devices that this process has written to, so that an
// interrupt can tell an incomplete output from one that got nothing.
const WRITTEN_DEVICES = new Set<string>();

/**
 * Returns whether this process wrote anything to a FIFO or device target.
 * A FIFO that no program has opened for reading gets nothing.
 */
export function wroteTo(target: OutputTarget): boolean {
  return target.kind === 'device' && WRITTEN_DEVICES.has(target.path);
}

function tempPathFor(target: string): string {
  return join(dirname(target), `.${basename(target)}.partial-${process.pid}`);
}

/**
 * Deletes the temporary files of every uncommitted output; for signal
 * handlers.
 *
 * @returns the target paths that a commit in progress had already replaced
 */
export function abortAllOutputs(): Set<string> {
  const replaced = new Set<string>();
  for (const file of [...ACTIVE]) {
    if (file.abortSync() && file.target.kind === 'file') {
      replaced.add(file.target.path);
    }
  }
  return replaced;
}

/** Returns the descriptor a path names, as /dev/stdout names 1. */
function descriptorNumber(path: string): number | undefined {
  if (path in STANDARD_STREAMS) return STANDARD_STREAMS[path];
  const match = /^\/(?:dev|proc\/(?:self|thread-self|(\d+)))\/fd\/(\d+)$/.exec(
    path,
  );
  if (!match) return undefined;
  if (match[1] !== undefined && Number(match[1]) !== process.pid) {
    return undefined;
  }
  return Number(match[2]);
}

function descriptorTarget(fd: number, label: string): OutputTarget {
  let stats: Stats;
  try {
    stats = fstatSync(fd);
  } catch {
    throw new InputError(
      `${label}: file descriptor ${fd} is not open; redirect it or give a file path`,
    );
  }
  if (stats.isDirectory()) {
    throw new InputError(`${label}: is a directory; give a file path`);
  }
  return { kind: 'descriptor', fd };
}

/** Returns the stream for a descriptor and whether closing it is ours. */
function isFifo(path: string): boolean {
  try {
    return statSync(path).isFIFO();
  } catch {
    return false;
  }
}

// Time between two attempts to open a FIFO that no program reads yet.
const FIFO_RETRY_MS = 50;

/**
 * Opens a FIFO for writing without the libuv thread pool, and waits until
 * a program opens it for reading. A blocking open() would hold a pool
 * thread, and a process exit waits for it, so a signal could not end the
 * command. With O_NONBLOCK, open() fails with ENXIO while no reader exists
 * and is tried again, and the FIFO is then written as a pipe from the
 * event loop.
 *
 * @throws InputError when the FIFO cannot be opened for another reason
 */
async function openFifo(path: string, label: string): Promise<Writable> {
  for (;;) {
    let fd: number;
    try {
      // O_WRONLY without O_CREAT: a FIFO removed meanwhile is an error,
      // not a new regular file.
      fd = openSync(path, constants.O_WRONLY | constants.O_NONBLOCK);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENXIO') {
        throw openError(err, label, path);
      }
      await new Promise((resolve) => setTimeout(resolve, FIFO_RETRY_MS));
      continue;
    }
    return new Socket({ fd, readable: false, writable: true });
  }
}

function descriptorStream(fd: number): [Writable, boolean] {
  if (fd === 1) return [process.stdout, false];
  if (fd === 2) return [process.stderr, false];
  // Closing a descriptor above 2 gives its reader, such as a process
  // substitution of bash, the end of file.
  const owns = fd > 2;
  return [createWriteStream('', { fd, autoClose: owns }), owns];
}

function existingTarget(
  path: string,
  stats: Stats,
  label: string,
  inputs: string[],
): OutputTarget {
  if (stats.isDirectory()) {
    throw new InputError(`${label}: is a directory; give a file path`);
  }
  if (stats.isSocket()) {
    throw new InputError(`${label}: is a socket; give a file path`);
  }
  // NOTE: a regular file directly in /dev or under /proc is written in
  // place too, because files there are never ours to replace.
  if (!stats.isFile() || isSystemPath(path)) return { kind: 'device', path };
  return fileTarget(path, label, inputs);
}

function newFileTarget(
  path: string,
  label: string,
  inputs: string[],
): OutputTarget {
  // A typo such as /dev/stdot would otherwise leave a stray file among the
  // devices.
  if (isSystemPath(path)) {
    throw new InputError(
      `${label}: not found, and uie-batch does not create files in ${dirname(path)}; check the device name`,
    );
  }
  return fileTarget(path, label, inputs);
}

function fileTarget(
  path: string,
  label: string,
  inputs: string[],
): OutputTarget {
  checkFolder(dirname(path), label);
  if (inputs.some((input) => isSameFile(input, path))) {
    throw new InputError(
      `${label}: the output is also an input; choose another output file`,
    );
  }
  return { kind: 'file', path };
}

/**
 * Returns whether an input and an output path name one file: the same path
 * after links, or the same device and inode, which also catches a hard link
 * and a file redirected to standard input (`-`).
 */
function isSameFile(input: string, output: string): boolean {
  if (input !== '-' && canonical(input) === canonical(output)) return true;
  // NOTE: a pipe on standard input (cat f | extract - -o f) hides the file
  // behind it, so that case is not detected.
  const inputStats = input === '-' ? fstatIfOpen(0) : statQuietly(input);
  const outputStats = statQuietly(output);
  if (!inputStats?.isFile() || !outputStats) return false;
  return (
    inputStats.dev === outputStats.dev && inputStats.ino === outputStats.ino
  );
}

function fstatIfOpen(fd: number): Stats | undefined {
  try {
    return fstatSync(fd);
  } catch {
    return undefined;
  }
}

/** Returns a path's stats, or undefined when it cannot be read. */
function statQuietly(path: string): Stats | undefined {
  try {
    return statSync(path);
  } catch {
    return undefined;
  }
}

/** Returns whether a path is directly in /dev, or anywhere under /proc. */
function isSystemPath(path: string): boolean {
  const real = canonical(path);
  return dirname(real) === '/dev' || real.startsWith('/proc/');
}

/** Checks that a folder exists and that a temporary file can be made in it. */
function checkFolder(dir: string, label: string): void {
  const stats = statIfExists(dir, label, 'output folder');
  if (!stats) {
    throw new InputError(
      `${label}: output folder not found: ${dir}; create it first`,
    );
  }
  if (!stats.isDirectory()) {
    throw new InputError(
      `${label}: ${dir} is not a folder; give a path inside a folder`,
    );
  }
  try {
    accessSync(dir, constants.W_OK);
  } catch (err) {
    throw new InputError(
      `${label}: cannot write to output folder ${dir}: ${reason(err)}; choose another folder or change its permissions`,
      { cause: err },
    );
  }
}

function lstatIfExists(path: string, label: string): Stats | undefined {
  try {
    return lstatSync(path);
  } catch (err) {
    // ENOTDIR: a parent is a file, which checkFolder then reports.
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw new InputError(`${label}: ${reason(err)}`, {
      cause: err,
    });
  }
}

function statIfExists(
  path: string,
  label: string,
  description: string,
): Stats | undefined {
  try {
    return statSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new InputError(
      `${label}: cannot use ${description} ${path}: ${reason(err)}`,
      { cause: err },
    );
  }
}

function statOrThrow(path: string, label: string): Stats {
  const stats = statIfExists(path, label, 'output');
  if (!stats) throw new InputError(`${label}: ${path} not found`);
  return stats;
}

function openError(err: unknown, label: string, path: string): InputError {
  const code = (err as NodeJS.ErrnoException).code ?? '';
  const hint = ['EACCES', 'EPERM', 'EROFS'].includes(code)
    ? "; check the folder's permissions or choose another output"
    : code === 'ENAMETOOLONG'
      ? '; choose a shorter file name'
      : '';
  return new InputError(
    `${label}: cannot open ${path} for writing: ${reason(err)}${hint}`,
    { cause: err },
  );
}

/** Returns an error's message without the path that messages around it name. */
function reason(err: unknown): string {
  return (err as Error).message.replace(/, \w+ '[^']*'$/, '');
}

function canonical(path: string): string {
  const abs = resolve(path);
  try {
    return realpathSync(abs);
  } catch {
    try {
      return join(realpathSync(dirname(abs)), basename(abs));
    } catch {
      return abs;
    }
  }
}

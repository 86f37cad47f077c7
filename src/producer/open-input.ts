import {
  constants,
  createReadStream,
  openSync,
  statSync,
  type ReadStream,
  type Stats,
} from 'node:fs';
import { stat } from 'node:fs/promises';
import { Socket } from 'node:net';
import { resolve } from 'node:path';
import { pipeline, Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';

import { InputError } from '../errors/errors.js';

/** Input path that means standard input, as in most Unix tools. */
export const STDIN = '-';

// Names of this process's standard input. Linux cannot open them again when
// standard input is a socket, as Node makes it for a piped child, so they
// are read through the descriptor instead.
const STDIN_PATHS = new Set(['/dev/stdin', '/dev/fd/0', '/proc/self/fd/0']);

/** Returns how messages name an input: `-` is standard input. */
export function inputName(file: string): string {
  return isStandardInput(file) ? 'standard input' : file;
}

/**
 * Returns the name under which the run records an input file: its absolute
 * path, so that the same file given from another folder is recognised, or
 * `-` for standard input, which has no path, also when given as /dev/stdin.
 */
export function recordedFile(source: string): string {
  // /dev/stdin and its aliases are the same input as -, so that enqueuing
  // the same rows through either adds nothing.
  return isStandardInput(source) ? STDIN : resolve(source);
}

/**
 * Checks an input path before a command starts any work: it must not be a
 * directory, and standard input must not be a terminal, where reading would
 * wait for typed rows. A missing file passes; opening it reports that.
 *
 * @throws InputError when the path is a directory or a terminal
 */
export function checkInput(file: string): void {
  if (isStandardInput(file) && process.stdin.isTTY) {
    throw new InputError(
      `${inputName(file)} is a terminal, not a CSV; pipe a CSV in (cat corpus.csv | uie-batch ...) or give the path of the CSV file instead of ${file}`,
    );
  }
  if (file === STDIN) return;
  let isDirectory = false;
  try {
    isDirectory = statSync(file).isDirectory();
  } catch {
    return;
  }
  if (isDirectory) {
    throw new InputError(`${file}: is a directory, expected a CSV file`);
  }
}

/** Tells whether a path names standard input: `-` or /dev/stdin and its aliases. */
export function isStandardInput(file: string): boolean {
  return file === STDIN || STDIN_PATHS.has(file);
}

/** Bytes at the start of an input that {@link openInput} returns as its head. */
export const SNIFF_BYTES = 64 * 1024;

/** An input opened for reading once, from its first byte. */
export interface OpenedInput {
  /** All bytes of the input, decompressed, the head included. */
  bytes: Readable;
  /** Up to the first SNIFF_BYTES bytes of `bytes`. */
  head: Buffer;
  /** Share of a regular file read so far, from 0 to 1. Unset for a pipe. */
  readShare?: () => number;
  /** Stops reading, for a caller that does not read `bytes` to the end. */
  close: () => void;
}

/**
 * Opens an input once. A pipe cannot be read twice, so the head that the
 * encoding check needs is taken from the same stream and then read again
 * from memory. Unless gunzip is set either way, the input is decompressed
 * when it starts with the gzip magic bytes, because a pipe has no name that
 * shows its format and a file's name may not either.
 *
 * @throws InputError when the input cannot be read or is not valid gzip
 */
export async function openInput(
  file: string,
  gunzip: boolean | undefined,
): Promise<OpenedInput> {
  let piped: Readable | undefined;
  try {
    piped = openStream(file);
  } catch (err) {
    throw readError(file, err);
  }
  const raw = piped ?? createReadStream(file);
  let bytes: Readable = raw;
  const close = () => {
    bytes.destroy();
    raw.destroy();
  };
  try {
    let decompress = gunzip ?? false;
    if (gunzip === undefined) {
      const start = await peek(raw, GZIP_MAGIC.length);
      decompress = start.head.equals(GZIP_MAGIC);
      bytes = start.bytes;
    }
    // pipeline destroys the gunzip stream with a read error, so reading it
    // throws that error instead of waiting for data that never comes.
    if (decompress) bytes = pipeline(bytes, createGunzip(), () => {});
    const start = await peek(bytes, SNIFF_BYTES);
    bytes = start.bytes;
    if (piped) return { bytes, head: start.head, close };
    const size = (await stat(file)).size;
    const stored = raw as ReadStream;
    const readShare = () => (size > 0 ? stored.bytesRead / size : 1);
    return { bytes, head: start.head, readShare, close };
  } catch (err) {
    close();
    throw readError(file, err);
  }
}

const GZIP_MAGIC = Buffer.from([0x1f, 0x8b]);

/**
 * Returns a stream for standard input, a pipe or a device, or undefined for
 * a regular file or a missing path, which createReadStream reports.
 */
function openStream(file: string): Readable | undefined {
  if (file === STDIN) return process.stdin;
  let stats: Stats;
  try {
    stats = statSync(file);
  } catch {
    return undefined;
  }
  if (stats.isFile()) return undefined;
  if (STDIN_PATHS.has(file)) return process.stdin;
  return stats.isFIFO() ? openFifo(file) : createReadStream(file);
}

/**
 * Opens a FIFO without the libuv thread pool. createReadStream would block a
 * pool thread in open() until a writer comes and in read() until data comes.
 * A process that exits waits for those threads, so a signal could not end
 * the command. Opened with O_NONBLOCK, the FIFO is read as a pipe from the
 * event loop. Linux reports its end of file only after a writer has opened
 * and closed it, so a FIFO that no writer has opened yet is not read as empty.
 */
function openFifo(file: string): Readable {
  const fd = openSync(file, constants.O_RDONLY | constants.O_NONBLOCK);
  return new Socket({ fd, readable: true, writable: false });
}

/**
 * Reads up to the first `length` bytes of a stream and returns them with a
 * stream of all its bytes from the start, those included.
 */
async function peek(
  stream: Readable,
  length: number,
): Promise<{ head: Buffer; bytes: Readable }> {
  const chunks = stream[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  const parts: Buffer[] = [];
  let size = 0;
  let ended = false;
  while (size < length && !ended) {
    const next = await chunks.next();
    if (next.done) ended = true;
    else {
      parts.push(next.value);
      size += next.value.length;
    }
  }

  async function* replay(): AsyncGenerator<Buffer> {
    try {
      yield* parts.splice(0);
      if (ended) return;
      for (;;) {
        const next = await chunks.next();
        if (next.done) return;
        yield next.value;
      }
    } finally {
      // Ends the stream too when the reader stops early.
      await chunks.return?.();
    }
  }
  const head = Buffer.concat(parts).subarray(0, length);
  return { head, bytes: Readable.from(replay(), { objectMode: false }) };
}

/** Wraps an error in reading or decompressing an input for its message. */
function readError(file: string, err: unknown): unknown {
  if (err instanceof InputError) return err;
  const code = (err as NodeJS.ErrnoException).code ?? '';
  const problem = code.startsWith('Z_')
    ? `${inputName(file)} is not valid gzip data`
    : file === STDIN
      ? 'cannot read standard input'
      : `cannot open input file ${file}`;
  return new InputError(`${problem}: ${(err as Error).message}`, {
    cause: err,
  });
}

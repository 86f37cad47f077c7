import { createReadStream } from 'node:fs';
import { readdir, realpath, stat } from 'node:fs/promises';
import { isAbsolute, join, relative, resolve, sep } from 'node:path';
import { pipeline, type Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';

import type { Logger } from 'pino';

import { InputError } from '../errors/errors.js';
import { readCsvDocuments, type RejectedRow } from './csv-source.js';
import {
  createDecodeStream,
  decodeUtf8Lenient,
  INVALID_BYTES,
} from './decode-stream.js';
import type { QueueDocument, QueueEvent } from './enqueue.js';

/** A document read from an archive folder. */
export interface ArchiveDocument extends QueueDocument {
  /** Path of the file relative to the archive folder, with `/` separators. */
  path: string;
}

/** A document or a rejected row or file from an archive folder. */
export type ArchiveEvent = QueueEvent<ArchiveDocument>;

/** Format and compression of an archive file, from the end of its name. */
export interface ArchiveFileKind {
  format: 'csv' | 'jsonl' | 'txt';
  gzip: boolean;
}

const FORMATS = ['csv', 'jsonl', 'txt'] as const;

/** Returns how to read a file by its name, or undefined for other files. */
export function archiveFileKind(name: string): ArchiveFileKind | undefined {
  const lower = name.toLowerCase();
  const gzip = lower.endsWith('.gz');
  const base = gzip ? lower.slice(0, -3) : lower;
  const format = FORMATS.find((f) => base.endsWith(`.${f}`));
  return format ? { format, gzip } : undefined;
}

/**
 * Streams the documents of every `.csv`, `.jsonl` and `.txt` file under an
 * archive folder, each also gzip-compressed (`.csv.gz`, ...). Folders are
 * walked depth-first with names sorted by code unit; names starting with "."
 * are skipped, as are other files. All files are read as UTF-8.
 *
 * Symbolic links are not followed, so no file is read twice and nothing
 * outside the folder is read. A link whose target lies outside the archive
 * folder is logged as a warning, any other link at debug level.
 *
 * Ids are namespaced by the file's relative path so that files may reuse
 * ids: `<path>#<id>` for CSV rows (`id` and `text` columns, else the row
 * number as id) and JSONL lines (objects with `id` and `text`), and
 * `<path>` for a `.txt` file, which is one document. A file that cannot be
 * read, or stops being readable part-way, becomes one reject with line 0 or
 * the line reached. Reading then goes on with the next file.
 *
 * @throws InputError when the archive folder cannot be listed
 */
export async function* readArchiveDocuments(
  dir: string,
  log: Logger,
): AsyncGenerator<ArchiveEvent> {
  let realRoot: string;
  try {
    if (!(await stat(dir)).isDirectory()) {
      throw new InputError(`archive ${dir} is not a folder`);
    }
    realRoot = await realpath(dir);
  } catch (err) {
    if (err instanceof InputError) throw err;
    throw new InputError(
      `cannot read archive folder ${dir}: ${(err as Error).message}`,
      { cause: err },
    );
  }
  const walk: ArchiveWalk = { root: dir, realRoot, log };
  for await (const entry of listArchiveFiles(walk, '')) {
    if (entry.type === 'reject') yield entry;
    else yield* readArchiveFile(dir, entry.path, entry.kind, log);
  }
}

type ListEntry =
  | { type: 'file'; path: string; kind: ArchiveFileKind }
  | { type: 'reject'; reject: RejectedRow };

/** The archive folder being walked, as given and with links resolved. */
interface ArchiveWalk {
  root: string;
  realRoot: string;
  log: Logger;
}

async function* listArchiveFiles(
  walk: ArchiveWalk,
  folder: string,
): AsyncGenerator<ListEntry> {
  const { root } = walk;
  let entries;
  try {
    entries = await readdir(join(root, folder), { withFileTypes: true });
  } catch (err) {
    if (folder === '') throw err;
    yield fileReject(join(root, folder), 0, err);
    return;
  }
  // Names within one folder are unique, so no two entries compare equal.
  entries.sort((a, b) => (a.name < b.name ? -1 : 1));
  for (const entry of entries) {
    if (entry.name.startsWith('.')) continue;
    const path = folder ? `${folder}/${entry.name}` : entry.name;
    if (entry.isSymbolicLink()) {
      await logSkippedLink(walk, join(root, path));
      continue;
    }
    if (entry.isDirectory()) {
      yield* listArchiveFiles(walk, path);
      continue;
    }
    const kind = archiveFileKind(entry.name);
    if (kind && entry.isFile()) yield { type: 'file', path, kind };
  }
}

/** Logs a symbolic link that the walk skips, with where it leads. */
async function logSkippedLink(walk: ArchiveWalk, link: string): Promise<void> {
  let target: string;
  try {
    target = await realpath(link);
  } catch (err) {
    // A warning, because the link may point at documents that should be scanned.
    walk.log.warn(
      { link, err },
      'symbolic link in the archive leads nowhere; skipped',
    );
    return;
  }
  if (isInside(walk.realRoot, target)) {
    walk.log.debug(
      { link, target },
      'symbolic link inside the archive skipped',
    );
    return;
  }
  walk.log.warn(
    { link, target, archive: walk.root },
    'symbolic link leads outside the archive folder; skipped',
  );
}

function isInside(folder: string, path: string): boolean {
  const rel = relative(folder, path);
  if (isAbsolute(rel)) return false;
  return rel !== '..' && !rel.startsWith(`..${sep}`);
}

async function* readArchiveFile(
  root: string,
  path: string,
  kind: ArchiveFileKind,
  log: Logger,
): AsyncGenerator<ArchiveEvent> {
  const source = join(root, path);
  const at = { line: 0 };
  const file = { source, file: resolve(source), path };
  try {
    if (kind.format === 'csv') yield* readCsvFile(file, kind.gzip, at, log);
    else if (kind.format === 'jsonl') yield* readJsonlFile(file, kind, at);
    else yield await readTextFile(file, kind.gzip);
  } catch (err) {
    if (!isReadError(err)) throw err;
    yield fileReject(source, at.line, err);
  }
}

/** Origin of the documents of one file: its path as given, absolute and relative. */
interface FileOrigin {
  source: string;
  file: string;
  path: string;
}

async function* readCsvFile(
  origin: FileOrigin,
  gzip: boolean,
  at: { line: number },
  log: Logger,
): AsyncGenerator<ArchiveEvent> {
  const rows = readCsvDocuments(origin.source, { gunzip: gzip, log });
  for await (const event of rows) {
    at.line = event.type === 'reject' ? event.reject.line : event.document.line;
    if (event.type === 'reject') {
      const { id, ...rest } = event.reject;
      const reject =
        id === undefined ? rest : { ...rest, id: namespaced(origin, id) };
      yield { type: 'reject', reject };
      continue;
    }
    const doc = event.document;
    yield {
      type: 'document',
      document: { ...doc, ...origin, id: namespaced(origin, doc.id) },
    };
  }
}

function namespaced(origin: FileOrigin, id: string): string {
  return `${origin.path}#${id}`;
}

async function* readJsonlFile(
  origin: FileOrigin,
  kind: ArchiveFileKind,
  at: { line: number },
): AsyncGenerator<ArchiveEvent> {
  let index = 0;
  for await (const raw of readLines(openText(origin.source, kind.gzip))) {
    at.line++;
    const content = at.line === 1 ? raw.replace(/^\ufeff/, '') : raw;
    if (content.trim() === '') continue;
    yield parseJsonLine(origin, content, at.line, index++);
  }
}

function parseJsonLine(
  origin: FileOrigin,
  content: string,
  line: number,
  index: number,
): ArchiveEvent {
  const reject = (reason: string, id?: string): ArchiveEvent => ({
    type: 'reject',
    reject: {
      file: origin.source,
      line,
      ...(id !== undefined ? { id: namespaced(origin, id) } : {}),
      reason,
    },
  });

  let value: unknown;
  try {
    value = JSON.parse(content);
  } catch (err) {
    return reject(`invalid JSON: ${(err as Error).message}`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return reject('expected a JSON object with "id" and "text"');
  }
  const fields = value as Record<string, unknown>;
  const id = jsonId(fields.id);
  if (typeof id !== 'string') return reject(id.reason);
  const text = fields.text;
  if (text === undefined || text === null) {
    return reject('missing field "text"', id);
  }
  if (typeof text !== 'string') {
    return reject(`"text": expected a string, got ${typeof text}`, id);
  }
  if (text.includes(INVALID_BYTES)) {
    return reject('invalid UTF-8 bytes in field "text"', id);
  }
  if (text.includes('\u0000')) return reject('NUL byte in field "text"', id);
  if (text.trim() === '') return reject('empty field "text"', id);
  return {
    type: 'document',
    document: { ...origin, id: namespaced(origin, id), text, line, index },
  };
}

/** Returns a JSONL id as a string, or why it cannot be one. */
function jsonId(value: unknown): string | { reason: string } {
  if (value === undefined || value === null) {
    return { reason: 'missing field "id"' };
  }
  if (typeof value === 'number' && Number.isFinite(value)) return String(value);
  if (typeof value !== 'string') {
    return {
      reason: `"id": expected a string or a number, got ${typeof value}`,
    };
  }
  const id = value.trim();
  if (id === '') return { reason: 'empty field "id"' };
  if (id.includes(INVALID_BYTES)) {
    return { reason: 'invalid UTF-8 bytes in field "id"' };
  }
  if (id.includes('\0')) return { reason: 'NUL byte in field "id"' };
  return id;
}

async function readTextFile(
  origin: FileOrigin,
  gzip: boolean,
): Promise<ArchiveEvent> {
  const parts: Buffer[] = [];
  for await (const chunk of openBytes(origin.source, gzip)) parts.push(chunk);
  const text = decodeUtf8Lenient(Buffer.concat(parts)).replace(/^\ufeff/, '');
  // The file is the document, so it is rejected as a whole: line 0, as
  // for other files that cannot be read.
  const reject = (reason: string): ArchiveEvent => ({
    type: 'reject',
    reject: { file: origin.source, line: 0, id: origin.path, reason },
  });

  if (text.includes(INVALID_BYTES)) return reject('invalid UTF-8 bytes');
  if (text.includes('\u0000')) return reject('NUL byte in the text');
  if (text.trim() === '') return reject('empty file');
  return {
    type: 'document',
    document: { ...origin, id: origin.path, text, line: 1, index: 0 },
  };
}

/** Opens a file as bytes, decompressed when gzip is set. */
function openBytes(file: string, gzip: boolean): AsyncIterable<Buffer> {
  const input = createReadStream(file);
  // pipeline destroys the gunzip stream with a read error, so iterating it
  // throws the error instead of waiting for data that never comes.
  return gzip ? pipeline(input, createGunzip(), () => {}) : input;
}

/** Opens a file as UTF-8 text; invalid bytes become INVALID_BYTES. */
function openText(file: string, gzip: boolean): Readable {
  const decode = createDecodeStream('utf-8');
  const input = createReadStream(file);
  const text = gzip
    ? pipeline(input, createGunzip(), decode, () => {})
    : pipeline(input, decode, () => {});
  return text.setEncoding('utf8');
}

/** Splits text into lines at LF or CRLF, without the line ends. */
async function* readLines(text: AsyncIterable<string>): AsyncGenerator<string> {
  let rest = '';
  for await (const chunk of text) {
    const lines = (rest + chunk).split('\n');
    rest = lines.pop() ?? '';
    for (const line of lines) yield line.replace(/\r$/, '');
  }
  if (rest !== '') yield rest.replace(/\r$/, '');
}

/** Tells an error in reading a file apart from a fault in this code. */
function isReadError(err: unknown): boolean {
  if (err instanceof InputError) return true;
  return typeof (err as NodeJS.ErrnoException | undefined)?.code === 'string';
}

function fileReject(
  file: string,
  line: number,
  err: unknown,
): { type: 'reject'; reject: RejectedRow } {
  const code = (err as NodeJS.ErrnoException).code ?? '';
  const message = (err as Error).message;
  let reason = `cannot read file: ${message}`;
  if (code.startsWith('Z_')) reason = `invalid gzip data: ${message}`;
  if (err instanceof InputError) reason = withArchiveAdvice(message);
  return { type: 'reject', reject: { file, line, reason } };
}

const ARCHIVE_ADVICE =
  'scan reads archive files as UTF-8, and CSV files as comma-separated with a "text" column and an optional "id" column; convert the file';

/**
 * Replaces the advice of a CSV reading error, which names options of
 * extract and enqueue such as --encoding, by what scan expects, since scan
 * takes none of those options.
 */
function withArchiveAdvice(message: string): string {
  const sentences = message.split(/(?<=\.) /);
  const problem = sentences.filter((s) => !/(^|\s)--[a-z]/.test(s));
  if (problem.length === sentences.length) return message;
  return `${problem.join(' ').replace(/\.$/, '')}. ${ARCHIVE_ADVICE}`;
}

import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import iconv from 'iconv-lite';
import { Redis } from 'ioredis';

/** Repository root (tests run from dist/test). */
export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const BIN = join(ROOT, 'bin/uie-batch.js');
export const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Starts the CLI as a child process. Returns the child, for signals and
 * for writing to its standard input when stdin is 'pipe', and a promise of
 * its exit code and collected output.
 */
export function startCli(
  args: string[],
  env: Record<string, string> = {},
  stdin: 'ignore' | 'pipe' = 'ignore',
): { child: ChildProcess; result: Promise<CliResult> } {
  const child = spawn(process.execPath, [BIN, ...args], {
    env: { ...process.env, LOG_LEVEL: 'warn', ...env },
    stdio: [stdin, 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d) => (stdout += d));
  child.stderr!.on('data', (d) => (stderr += d));
  const result = new Promise<CliResult>((resolvePromise, reject) => {
    child.on('error', reject);
    child.on('close', (code) => resolvePromise({ code, stdout, stderr }));
  });
  return { child, result };
}

/** Runs the CLI as a child process and collects its output. */
export function runCli(
  args: string[],
  env: Record<string, string> = {},
): Promise<CliResult> {
  return startCli(args, env).result;
}

/** Runs the CLI as {@link runCli} does and asserts that it exits 0. */
export async function runCliOk(
  args: string[],
  env: Record<string, string> = {},
): Promise<CliResult> {
  const result = await runCli(args, env);
  assert.equal(result.code, 0, `${args.join(' ')}: ${result.stderr}`);
  return result;
}

/**
 * Runs the CLI as a child process with input written to its standard
 * input, which Node makes a socket, and collects its output.
 *
 * @param cwd - working directory of the child; the test's by default
 */
export function runCliWithInput(
  args: string[],
  input: string | Buffer,
  env: Record<string, string> = {},
  cwd?: string,
): Promise<CliResult> {
  const child = spawn(process.execPath, [BIN, ...args], {
    env: { ...process.env, LOG_LEVEL: 'warn', ...env },
    stdio: ['pipe', 'pipe', 'pipe'],
    ...(cwd ? { cwd } : {}),
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d) => (stdout += d));
  child.stderr!.on('data', (d) => (stderr += d));
  // A child that fails before reading all its input closes the pipe, and
  // its exit code and stderr then tell the test what happened.
  child.stdin!.on('error', () => {});
  child.stdin!.end(input);
  return new Promise<CliResult>((resolvePromise, reject) => {
    child.on('error', reject);
    child.on('close', (code) => resolvePromise({ code, stdout, stderr }));
  });
}

export function tempDir(name: string): string {
  return mkdtempSync(join(tmpdir(), `uie-${name}-`));
}

/** Returns a key prefix that no other test or deployment uses. */
export function uniquePrefix(name: string): string {
  return `uie-test-${name}-${process.pid}-${Date.now().toString(36)}`;
}

/** Returns every Redis key under a prefix, sorted. */
export async function keysUnder(
  redis: Redis,
  prefix: string,
): Promise<string[]> {
  const keys: string[] = [];
  let cursor = '0';
  do {
    const [next, page] = await redis.scan(
      cursor,
      'MATCH',
      `${prefix}:*`,
      'COUNT',
      1000,
    );
    cursor = next;
    keys.push(...page);
  } while (cursor !== '0');
  return keys.sort();
}

/** Deletes every Redis key under a prefix. */
export async function deletePrefix(prefix: string): Promise<void> {
  const redis = new Redis(REDIS_URL);
  try {
    const keys = await keysUnder(redis, prefix);
    for (let i = 0; i < keys.length; i += 1000) {
      await redis.del(...keys.slice(i, i + 1000));
    }
  } finally {
    redis.disconnect();
  }
}

export function readJsonl<T = Record<string, unknown>>(path: string): T[] {
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as T);
}

/**
 * Fixture plugin that throws on texts marked 【抛出】 and records each text
 * it reads in the file named by UIE_TEST_FIND_LOG.
 */
export const MARKER_PLUGIN = join(ROOT, 'test/fixtures/marker-plugin.mjs');

/**
 * Counts the calls of the marker plugin's find per text, from its log
 * file; a missing file means no call.
 */
export function countFindCalls(path: string): Map<string, number> {
  const counts = new Map<string, number>();
  if (!existsSync(path)) return counts;
  for (const text of readJsonl<string>(path)) {
    counts.set(text, (counts.get(text) ?? 0) + 1);
  }
  return counts;
}

/** Returns the pino log lines of a CLI's stderr, parsed; other lines are left out. */
export function logLines<T = { msg: string }>(stderr: string): T[] {
  return stderr
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as T);
}

/** Quotes a CSV field. */
export function csvField(value: string): string {
  return /[",\r\n]/.test(value) ? `"${value.replace(/"/g, '""')}"` : value;
}

/** Folder of the labelled corpora, beside the repository. */
export const CORPORA =
  process.env.UIE_CORPORA ?? resolve(ROOT, '../shared/corpora');

/**
 * Returns up to count distinct paragraphs of People's Daily (January 1998)
 * as plain text, or undefined when the corpus is not on this machine.
 */
export function newsParagraphs(count: number): string[] | undefined {
  const path = join(CORPORA, 'pku1998_pos/199801.txt');
  if (!existsSync(path)) return undefined;
  const seen = new Set<string>();
  const out: string[] = [];
  for (const line of iconv.decode(readFileSync(path), 'gbk').split('\n')) {
    const tokens = line.replace(/\r/g, '').trim().split(/\s+/).slice(1);
    const text = tokens
      .map((t) =>
        t.replace(/^\[/, '').replace(/\/[A-Za-z]+(\][A-Za-z]+)?$/, ''),
      )
      .join('');
    if (text.length < 10 || seen.has(text)) continue;
    seen.add(text);
    out.push(text);
    if (out.length === count) break;
  }
  return out;
}

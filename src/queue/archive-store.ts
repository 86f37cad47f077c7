import { createHash } from 'node:crypto';
import { resolve } from 'node:path';

import type { Redis } from 'ioredis';

// A pass that dies leaves its list of seen ids behind; Redis drops it after
// this long, and the next pass of the archive deletes it at its start.
const PASS_TTL_MS = 24 * 3600 * 1000;

/**
 * Returns the key of an archive folder in Redis keys and scheduler ids: the
 * first 16 hex digits of the SHA-256 of its absolute path.
 */
export function archiveKey(dir: string): string {
  return createHash('sha256').update(resolve(dir)).digest('hex').slice(0, 16);
}

/**
 * Returns the content hash of a document: the first 32 hex digits of the
 * SHA-256 of its UTF-8 text.
 */
export function contentHash(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex').slice(0, 32);
}

/**
 * Redis records of one archive folder: the content hash last queued for
 * each document id, and the ids seen by the pass in progress. Keys are
 * `${prefix}:${queue}:uie:archive:<archiveKey>:…`.
 */
export class ArchiveStore {
  /** Absolute path of the archive folder. */
  readonly dir: string;
  readonly key: string;
  private readonly base: string;

  constructor(
    private readonly redis: Redis,
    prefix: string,
    queue: string,
    dir: string,
  ) {
    this.dir = resolve(dir);
    this.key = archiveKey(this.dir);
    this.base = `${prefix}:${queue}:uie:archive:${this.key}`;
  }

  /** Hash of document id to content hash. */
  get hashesKey(): string {
    return `${this.base}:hashes`;
  }

  /** Key of the lock held by the pass in progress. */
  get lockKey(): string {
    return `${this.base}:lock`;
  }

  private get passKey(): string {
    return `${this.base}:pass`;
  }

  /** Returns the stored content hashes of these ids; unknown ids map to undefined. */
  async hashes(ids: string[]): Promise<(string | undefined)[]> {
    if (ids.length === 0) return [];
    const raw = await this.redis.hmget(this.hashesKey, ...ids);
    return raw.map((h) => h ?? undefined);
  }

  /** Stores content hashes, to be called once the documents' jobs are queued. */
  async storeHashes(entries: { id: string; hash: string }[]): Promise<void> {
    if (entries.length === 0) return;
    await this.redis.hset(
      this.hashesKey,
      ...entries.flatMap((e) => [e.id, e.hash]),
    );
  }

  /** Starts a pass by forgetting the ids seen by one that did not finish. */
  async beginPass(): Promise<void> {
    await this.redis.del(this.passKey);
  }

  /**
   * Records documents as seen by this pass.
   *
   * @returns per document, the line of an earlier document of this pass
   *   with the same id, or undefined for the first one
   */
  async markSeen(
    docs: { id: string; line: number }[],
  ): Promise<(number | undefined)[]> {
    if (docs.length === 0) return [];
    const added = this.redis.multi();
    for (const d of docs) added.hsetnx(this.passKey, d.id, d.line);
    added.pexpire(this.passKey, PASS_TTL_MS);
    const replies = (await added.exec()) ?? [];
    const repeated = docs.filter((_, i) => replies[i]?.[1] === 0);
    if (repeated.length === 0) return docs.map(() => undefined);

    const lines = await this.redis.hmget(
      this.passKey,
      ...repeated.map((d) => d.id),
    );
    const firstLine = new Map(repeated.map((d, i) => [d.id, Number(lines[i])]));
    return docs.map((d, i) =>
      replies[i]?.[1] === 0 ? firstLine.get(d.id) : undefined,
    );
  }

  /** Ends a pass by deleting its list of seen ids. */
  async endPass(): Promise<void> {
    await this.redis.del(this.passKey);
  }
}

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

/** Returns the root of the Redis keys of the archive folder with this key. */
function archiveBase(prefix: string, queue: string, key: string): string {
  return `${prefix}:${queue}:uie:archive:${key}`;
}

// KEYS[1] is an archive's content hashes, and ARGV contains pairs of
// document id and text digest. Deletes each stored hash that begins with the
// digest, so a hash stored since by a later pass stays. Returns how many
// were deleted.
const RELEASE_SCRIPT = `
local released = 0
for i = 1, #ARGV, 2 do
  local stored = redis.call('HGET', KEYS[1], ARGV[i])
  if stored and string.sub(stored, 1, #ARGV[i + 1]) == ARGV[i + 1] then
    redis.call('HDEL', KEYS[1], ARGV[i])
    released = released + 1
  end
end
return released
`;

const RELEASE_BATCH = 500;

/**
 * Deletes the stored content hashes of documents that a scan run queued
 * but that have no result, so that the next pass over the archive queues
 * them again as new. A document is matched by the digest of the text the
 * run queued (textDigest in run-store.ts, the first 16 hex digits of the
 * same SHA-256), so a document changed and queued again since keeps its
 * hash. Documents without a digest are skipped.
 *
 * @param key - the archive key the run recorded
 * @returns the number of hashes deleted
 */
export async function releaseDocuments(
  redis: Redis,
  prefix: string,
  queue: string,
  key: string,
  docs:
    | Iterable<{ id: string; digest?: string }>
    | AsyncIterable<{ id: string; digest?: string }>,
): Promise<number> {
  const hashesKey = `${archiveBase(prefix, queue, key)}:hashes`;
  let released = 0;
  let pairs: string[] = [];
  const flush = async () => {
    if (pairs.length === 0) return;
    released += (await redis.eval(
      RELEASE_SCRIPT,
      1,
      hashesKey,
      ...pairs,
    )) as number;
    pairs = [];
  };
  for await (const doc of docs) {
    if (!doc.digest) continue;
    pairs.push(doc.id, doc.digest);
    if (pairs.length >= 2 * RELEASE_BATCH) await flush();
  }
  await flush();
  return released;
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
    this.base = archiveBase(prefix, queue, this.key);
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

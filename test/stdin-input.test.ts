import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  existsSync,
  mkdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';

import iconv from 'iconv-lite';
import { Redis } from 'ioredis';

import { RunStore } from '../src/queue/run-store.js';
import {
  deletePrefix,
  readJsonl,
  REDIS_URL,
  ROOT,
  runCli,
  runCliWithInput,
  tempDir,
  uniquePrefix,
} from './helpers.js';

const CORPUS = join(ROOT, 'examples/corpus.csv');
const ONE_THREAD = ['--threads', '1'];

/** Returns the example corpus with a rejected row of empty text appended. */
function corpusWithReject(): string {
  return readFileSync(CORPUS, 'utf8').replace(/\n?$/, '\n') + 'bad,\n';
}

function lines(text: string): string[] {
  return text.split('\n').filter(Boolean);
}

describe('when extract reads standard input', () => {
  const dir = tempDir('stdin');
  let reference: string[] = [];

  before(async () => {
    const out = join(dir, 'reference.jsonl');
    const result = await runCli(['extract', CORPUS, '-o', out, ...ONE_THREAD]);
    assert.equal(result.code, 0, result.stderr);
    reference = lines(readFileSync(out, 'utf8'));
  });

  after(() => rmSync(dir, { recursive: true, force: true }));

  it('writes the same lines as for the file', async () => {
    const out = join(dir, 'piped.jsonl');
    const result = await runCliWithInput(
      ['extract', '-', '-o', out, ...ONE_THREAD],
      readFileSync(CORPUS),
    );
    assert.equal(result.code, 0, result.stderr);
    assert.deepEqual(lines(readFileSync(out, 'utf8')), reference);
    assert.equal(existsSync(join(dir, 'piped.rejects.jsonl')), false);
  });

  it('writes stdout and stdin.rejects.jsonl for -o -', async () => {
    const cwd = join(dir, 'cwd');
    mkdirSync(cwd);
    const result = await runCliWithInput(
      ['extract', '-', '-o', '-', ...ONE_THREAD],
      corpusWithReject(),
      {},
      cwd,
    );
    assert.equal(result.code, 0, result.stderr);
    assert.deepEqual(lines(result.stdout), reference);
    assert.match(
      result.stderr,
      /written to standard output; 0 failed, 1 rows rejected \(see stdin\.rejects\.jsonl\)/,
    );
    const rejects = readJsonl(join(cwd, 'stdin.rejects.jsonl'));
    assert.deepEqual(rejects, [
      {
        file: '-',
        line: reference.length + 2,
        id: 'bad',
        reason: 'missing text in column "text"',
      },
    ]);
  });

  it('names /dev/stdin "-" in rejects', async () => {
    const cwd = join(dir, 'cwd-dev-stdin');
    mkdirSync(cwd);
    const result = await runCliWithInput(
      ['extract', '/dev/stdin', '-o', 'out.jsonl', ...ONE_THREAD],
      corpusWithReject(),
      {},
      cwd,
    );

    assert.equal(result.code, 0, result.stderr);
    const [reject] = readJsonl<{ file: string }>(
      join(cwd, 'out.rejects.jsonl'),
    );
    assert.equal(reject.file, '-');
  });

  it('reads over 64 KiB from /dev/stdin once', async () => {
    const ids = Array.from({ length: 1500 }, (_, i) => `r${i + 1}`);
    const rows = ids.map(
      (id, i) => `${id},张三在北京市工作了${i}年，李四住在上海。`,
    );
    const csv = ['id,text', ...rows].join('\n') + '\n';
    assert.ok(Buffer.byteLength(csv) > 64 * 1024);
    const out = join(dir, 'large.jsonl');

    const result = await runCliWithInput(
      ['extract', '/dev/stdin', '-o', out, ...ONE_THREAD],
      csv,
    );
    assert.equal(result.code, 0, result.stderr);
    const written = readJsonl<{ id: string }>(out).map((l) => l.id);
    assert.deepEqual(written, ids);
  });

  it('decompresses gzip data', async () => {
    const result = await runCliWithInput(
      ['extract', '-', '-o', '-', ...ONE_THREAD],
      gzipSync(readFileSync(CORPUS)),
      {},
      dir,
    );
    assert.equal(result.code, 0, result.stderr);
    assert.deepEqual(lines(result.stdout), reference);
  });

  it('decompresses a gzip file by its first bytes', async () => {
    const gz = join(dir, 'corpus.csv.gz');
    writeFileSync(gz, gzipSync(readFileSync(CORPUS)));
    const result = await runCliWithInput(
      ['extract', gz, '-o', '-', ...ONE_THREAD],
      Buffer.alloc(0),
      {},
      dir,
    );
    assert.equal(result.code, 0, result.stderr);
    assert.deepEqual(lines(result.stdout), reference);
  });

  it('decodes GB18030 with --encoding gb18030', async () => {
    const bytes = iconv.encode(readFileSync(CORPUS, 'utf8'), 'gb18030');
    const result = await runCliWithInput(
      ['extract', '-', '-o', '-', '--encoding', 'gb18030', ...ONE_THREAD],
      bytes,
      {},
      dir,
    );
    assert.equal(result.code, 0, result.stderr);
    assert.deepEqual(lines(result.stdout), reference);
  });

  it('names standard input in encoding errors', async () => {
    const bytes = iconv.encode(readFileSync(CORPUS, 'utf8'), 'gb18030');
    const result = await runCliWithInput(
      ['extract', '-', '-o', '-', ...ONE_THREAD],
      bytes,
      {},
      dir,
    );
    assert.equal(result.code, 1);
    assert.match(
      result.stderr,
      /^uie-batch: standard input does not look like utf-8: \d+ of the first \d+ characters are invalid/m,
    );
  });
});

describe('when enqueue reads standard input', () => {
  const prefix = uniquePrefix('stdin');
  const dir = tempDir('stdin-enqueue');
  const results = join(dir, 'results');
  const env = { UIE_PREFIX: prefix, UIE_OUTPUT_DIR: results };
  const run = 'piped';

  after(async () => {
    await deletePrefix(prefix);
    rmSync(dir, { recursive: true, force: true });
  });

  it('adds nothing when enqueued twice', async () => {
    const csv = corpusWithReject();
    const first = await runCliWithInput(
      ['enqueue', '-', '--run', run],
      csv,
      env,
    );
    assert.equal(first.code, 0, first.stderr);
    assert.match(first.stderr, /: 20 documents, 20 chunks in \d+ jobs queued/);
    assert.match(first.stderr, /0 already queued, 1 rows rejected\n$/);

    // From another folder, because `-` must not be resolved as a path.
    const cwd = join(dir, 'elsewhere');
    mkdirSync(cwd);
    const again = await runCliWithInput(
      ['enqueue', '-', '--run', run],
      csv,
      env,
      cwd,
    );
    assert.equal(again.code, 0, again.stderr);
    assert.match(
      again.stderr,
      /: 0 documents, 0 chunks in 0 jobs queued; 20 already queued, 0 rows rejected, 1 already rejected\n$/,
    );
  });

  it('adds nothing when enqueued as /dev/stdin', async () => {
    const again = await runCliWithInput(
      ['enqueue', '/dev/stdin', '--run', run],
      corpusWithReject(),
      env,
    );

    assert.equal(again.code, 0, again.stderr);
    assert.match(
      again.stderr,
      /: 0 documents, 0 chunks in 0 jobs queued; 20 already queued, 0 rows rejected, 1 already rejected\n$/,
    );
  });

  it('records the input as "-" in the run', async () => {
    const redis = new Redis(REDIS_URL);
    try {
      const store = new RunStore(redis, prefix, 'uie-batch', run);
      const [record] = await store.lookup(['1']);
      assert.equal(record?.file, '-');
      assert.equal(record?.line, 2);
    } finally {
      redis.disconnect();
    }
    const rejects = readJsonl(join(results, run, 'rejects.jsonl'));
    assert.deepEqual(rejects, [
      {
        file: '-',
        line: 22,
        id: 'bad',
        reason: 'missing text in column "text"',
      },
    ]);
  });
});

import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import pino from 'pino';

import {
  PartFileError,
  partFileName,
  partsDir,
  PartWriter,
} from '../src/output/part-files.js';
import { deletePrefix, runCli, tempDir, uniquePrefix } from './helpers.js';

interface LogLine {
  level: number;
  msg: string;
  path?: string;
}

const RECORD = { id: 'a', k: 0, error: 'x' };

describe('PartWriter', () => {
  it('names path and OS error', async () => {
    const dir = tempDir('part-writer');
    mkdirSync(join(dir, 'r1'));
    writeFileSync(partsDir(dir, 'r1'), 'not a folder');
    const lines: LogLine[] = [];
    const log = pino(
      { level: 'debug' },
      { write: (line: string) => lines.push(JSON.parse(line) as LogLine) },
    );
    const writer = new PartWriter(dir, 'w1', log);
    const path = join(partsDir(dir, 'r1'), partFileName('w1', 7));

    for (let i = 0; i < 2; i++) {
      await assert.rejects(writer.append('r1', 7, [RECORD]), (err) => {
        assert.ok(err instanceof PartFileError);
        assert.equal(err.path, path);
        assert.match(
          err.message,
          new RegExp(`^cannot write part file ${path}: EEXIST: `),
        );
        return true;
      });
    }

    const logged = lines.filter((l) => l.msg.startsWith('cannot write'));
    assert.equal(logged.length, 1, 'logged once per path');
    assert.equal(logged[0].path, path);
  });

  it('writes again once the folder is fixed', async () => {
    const dir = tempDir('part-writer');
    mkdirSync(join(dir, 'r1'));
    writeFileSync(partsDir(dir, 'r1'), 'not a folder');
    const writer = new PartWriter(dir, 'w1', pino({ level: 'silent' }));
    await assert.rejects(writer.append('r1', 7, [RECORD]), PartFileError);

    rmSync(partsDir(dir, 'r1'));
    await writer.append('r1', 7, [RECORD]);

    const path = join(partsDir(dir, 'r1'), partFileName('w1', 7));
    assert.equal(readFileSync(path, 'utf8'), JSON.stringify(RECORD) + '\n');
  });
});

describe('PartWriter with jobs appending at once', () => {
  it('keeps each line whole', async () => {
    const dir = tempDir('part-writer-large');
    const writer = new PartWriter(dir, 'w1', pino({ level: 'silent' }));
    // Each job writes about 0.65 MiB, more than Node.js writes in one call.
    const job = (id: string) =>
      Array.from({ length: 40 }, (_, k) => ({
        id,
        k,
        error: id.repeat(16 * 1024 + k),
      }));
    const ids = ['a', 'b', 'c', 'd'];

    await Promise.all(ids.map((id) => writer.append('r1', 1, job(id))));

    const path = join(partsDir(dir, 'r1'), partFileName('w1', 1));
    const lines = readFileSync(path, 'utf8').trimEnd().split('\n');
    assert.equal(lines.length, ids.length * 40);
    for (const line of lines) {
      const record = JSON.parse(line) as {
        id: string;
        k: number;
        error: string;
      };
      assert.equal(record.error, record.id.repeat(16 * 1024 + record.k));
    }
  });
});

describe('PartWriter after a failed append', () => {
  it('starts a new line', async () => {
    const dir = tempDir('part-writer-cut');
    const writer = new PartWriter(dir, 'w1', pino({ level: 'silent' }));
    const path = join(partsDir(dir, 'r1'), partFileName('w1', 1));
    // A folder in place of the part file makes the append fail.
    mkdirSync(path, { recursive: true });
    await assert.rejects(writer.append('r1', 1, [RECORD]), PartFileError);

    rmSync(path, { recursive: true });
    writeFileSync(path, '{"id":"a","k":0,"err');
    await writer.append('r1', 1, [RECORD]);

    const lines = readFileSync(path, 'utf8').split('\n');
    assert.equal(lines[1], JSON.stringify(RECORD));
  });
});

describe('when a worker cannot write its part file', () => {
  const dir = tempDir('part-files');
  const prefix = uniquePrefix('part-files');
  const results = join(dir, 'results');
  const env = {
    UIE_PREFIX: prefix,
    UIE_OUTPUT_DIR: results,
    UIE_CHUNKS_PER_JOB: '1',
    UIE_ATTEMPTS: '2',
  };

  after(() => deletePrefix(prefix));

  it('fails the jobs and status counts them', async () => {
    const csv = join(dir, 'docs.csv');
    writeFileSync(csv, 'id,text\n1,张三在北京。\n2,李四在上海。\n');
    const queued = await runCli(['enqueue', csv, '--run', 'r1'], env);
    assert.equal(queued.code, 0, queued.stderr);
    writeFileSync(partsDir(results, 'r1'), 'not a folder');

    const worker = await runCli(
      ['work', '--threads', '1', '--exit-when-drained'],
      env,
    );

    assert.equal(worker.code, 0, worker.stderr);
    const errors = worker.stderr
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as LogLine & { err: { message: string } })
      .filter((l) => l.level >= 50);
    assert.equal(errors.length, 1, worker.stderr);
    assert.equal(
      errors[0].msg,
      'cannot write part file; its jobs fail until the path is writable',
    );
    assert.ok(errors[0].path?.startsWith(`${partsDir(results, 'r1')}/`));
    assert.match(
      errors[0].err.message,
      /^cannot write part file .*: EEXIST: file already exists, mkdir /,
    );

    const status = await runCli(['status', '--run', 'r1', '--json'], env);
    assert.equal(status.code, 0, status.stderr);
    const report = JSON.parse(status.stdout) as {
      jobs: { failed: number };
      runs: { failed: number; done: number; etaSeconds: number | null }[];
    };
    assert.equal(report.jobs.failed, 2);
    assert.equal(report.runs[0].done, 0);
    assert.equal(report.runs[0].failed, 2);
    assert.equal(report.runs[0].etaSeconds, 0);
  });
});

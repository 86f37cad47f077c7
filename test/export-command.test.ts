import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { join, relative, resolve } from 'node:path';

import {
  deletePrefix,
  logLines,
  readJsonl,
  ROOT,
  runCli,
  startCli,
  tempDir,
  uniquePrefix,
} from './helpers.js';

const HOLD_RENAME = join(ROOT, 'test/fixtures/hold-rename.mjs');

describe('when export finds no part files', () => {
  const dir = tempDir('export-command');
  const prefix = uniquePrefix('export-command');
  const results = join(dir, 'results');
  const env = { UIE_PREFIX: prefix, UIE_OUTPUT_DIR: results };
  const csv = join(dir, 'docs.csv');
  const out = join(dir, 'out.jsonl');

  /** The message of an export that reads the parts folder of outputDir. */
  const noPartsMessage = (run: string, outputDir: string) =>
    `uie-batch: run ${run}: no result files found in ${resolve(outputDir, run, 'parts')}. ` +
    'Workers write them under the outputDir setting ' +
    `(UIE_OUTPUT_DIR, now ${outputDir}), so run export with the outputDir of the workers. ` +
    `If it is the same, uie-batch status --run ${run} shows whether the run's jobs are still waiting or have failed\n`;

  before(async () => {
    writeFileSync(csv, 'id,text\n1,张三在北京。\n2,李四在上海。\n');
    const queued = await runCli(['enqueue', csv, '--run', 'r1'], env);
    assert.equal(queued.code, 0, queued.stderr);
  });

  after(() => deletePrefix(prefix));

  it('names a parts folder that does not exist', async () => {
    const elsewhere = join(dir, 'elsewhere');
    const result = await runCli(['export', '--run', 'r1', '-o', out], {
      ...env,
      UIE_OUTPUT_DIR: elsewhere,
    });

    assert.equal(result.code, 1, result.stderr);
    assert.equal(result.stderr, noPartsMessage('r1', elsewhere));
  });

  it('prints a relative outputDir as absolute path', async () => {
    const elsewhere = relative(process.cwd(), join(dir, 'elsewhere'));
    const result = await runCli(['export', '--run', 'r1', '-o', out], {
      ...env,
      UIE_OUTPUT_DIR: elsewhere,
    });

    assert.equal(result.code, 1, result.stderr);
    assert.equal(result.stderr, noPartsMessage('r1', elsewhere));
  });

  it('names an empty parts folder, also with --partial', async () => {
    mkdirSync(join(results, 'r1', 'parts'), { recursive: true });
    const result = await runCli(
      ['export', '--run', 'r1', '-o', out, '--partial'],
      env,
    );

    assert.equal(result.code, 1, result.stderr);
    assert.equal(result.stderr, noPartsMessage('r1', results));
  });

  it('exports the run once a worker wrote its part file', async () => {
    const worker = await runCli(
      ['work', '--threads', '1', '--exit-when-drained'],
      env,
    );
    assert.equal(worker.code, 0, worker.stderr);

    const result = await runCli(['export', '--run', 'r1', '-o', out], env);

    assert.equal(result.code, 0, result.stderr);
    assert.deepEqual(
      readJsonl<{ id: string }>(out).map((line) => line.id),
      ['1', '2'],
    );
  });

  it('rejects an output in the run folder', async () => {
    const parts = join(results, 'r1', 'parts');
    const [part] = readdirSync(parts);
    const before = readFileSync(join(parts, part), 'utf8');
    const link = join(dir, 'link.jsonl');
    symlinkSync(join(parts, part), link);

    for (const target of [
      join(parts, part),
      link,
      join(results, 'r1', 'new.jsonl'),
    ]) {
      const result = await runCli(['export', '--run', 'r1', '-o', target], env);

      assert.equal(result.code, 1, result.stderr);
      assert.match(result.stderr, /is in the folder of run r1's results/);
    }
    assert.equal(readFileSync(join(parts, part), 'utf8'), before);
  });

  it('names damaged part files of a finished run', async () => {
    const parts = join(results, 'r1', 'parts');
    const [part] = readdirSync(parts);
    const path = join(parts, part);
    const before = readFileSync(path, 'utf8');
    // The first line whole, the second cut in the middle.
    const [first, second] = before.split('\n');
    writeFileSync(path, `${first}\n${second.slice(0, 10)}\n`);
    try {
      const result = await runCli(
        ['export', '--run', 'r1', '-o', join(dir, 'damaged.jsonl')],
        { ...env, LOG_LEVEL: 'warn' },
      );

      assert.equal(result.code, 1, result.stderr);
      assert.match(
        result.stderr,
        /run r1 is not finished: 1 documents have chunks without results\. Its counters say every chunk was done, so unless a worker is still retrying one, results are missing from its part files in /,
      );
      const warning = logLines<{ msg: string; first?: unknown }>(
        result.stderr,
      ).find((l) => l.msg === 'skipped part-file lines that do not parse');
      assert.deepEqual(warning?.first, [{ file: path, line: 2 }]);
    } finally {
      writeFileSync(path, before);
    }
  });
});

/** Polls until done() is true or 30 s have passed. */
async function waitFor(done: () => boolean): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (!done() && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('when export is interrupted', () => {
  const dir = tempDir('export-interrupt');
  const prefix = uniquePrefix('export-interrupt');
  const env = { UIE_PREFIX: prefix, UIE_OUTPUT_DIR: join(dir, 'results') };
  const csv = join(dir, 'docs.csv');

  before(async () => {
    writeFileSync(csv, 'id,text\n1,张三在北京。\n2,李四在上海。\n');
    const queued = await runCli(['enqueue', csv, '--run', 'r1'], env);
    assert.equal(queued.code, 0, queued.stderr);
    const worker = await runCli(
      ['work', '--threads', '1', '--exit-when-drained'],
      env,
    );
    assert.equal(worker.code, 0, worker.stderr);
  });

  after(async () => {
    await deletePrefix(prefix);
    rmSync(dir, { recursive: true, force: true });
  });

  for (const [signal, expected, earlier] of [
    ['SIGINT', 130, 'earlier output\n'],
    ['SIGTERM', 143, undefined],
    ['SIGHUP', 129, 'earlier output\n'],
  ] as const) {
    const kind = earlier === undefined ? 'no' : 'an';
    it(`exits ${expected} on ${signal} with ${kind} earlier file`, async () => {
      // A folder of its own, so a temporary file left by one case does not
      // fail the next.
      const outDir = join(dir, signal);
      mkdirSync(outDir);
      const out = join(outDir, 'out.jsonl');
      if (earlier !== undefined) writeFileSync(out, earlier);
      const marker = `test hook: holding the rename onto ${out}\n`;
      const { child, result } = startCli(['export', '--run', 'r1', '-o', out], {
        ...env,
        NODE_OPTIONS: `--import=${HOLD_RENAME}`,
        UIE_TEST_HOLD_RENAME: out,
      });
      let stderr = '';
      child.stderr!.on('data', (d) => (stderr += d));
      // Ends the child when an assert fails before it has exited.
      const timer = setTimeout(() => child.kill('SIGKILL'), 40_000);
      try {
        await waitFor(() => stderr.includes(marker));
        assert.ok(
          stderr.includes(marker),
          `the rename was not reached: ${stderr}`,
        );
        assert.equal(partialFiles(outDir).length, 1, 'no temporary file');

        const sent = Date.now();
        child.kill(signal);
        const { code } = await result;

        assert.equal(code, expected, stderr);
        assert.ok(Date.now() - sent < 5000, 'took 5 s or more to exit');
        assert.equal(
          stderr,
          marker +
            `uie-batch: export of run r1 interrupted; nothing was written to ${out}\n`,
        );
        assert.deepEqual(partialFiles(outDir), []);
        if (earlier === undefined) assert.equal(existsSync(out), false);
        else assert.equal(readFileSync(out, 'utf8'), earlier);
      } finally {
        child.kill('SIGKILL');
        clearTimeout(timer);
      }
    });
  }

  it('reports a finished rename as written', async () => {
    const outDir = join(dir, 'renamed');
    mkdirSync(outDir);
    const out = join(outDir, 'out.jsonl');
    writeFileSync(out, 'earlier output\n');
    const marker = `test hook: holding the rename onto ${out}\n`;
    const { child, result } = startCli(['export', '--run', 'r1', '-o', out], {
      ...env,
      NODE_OPTIONS: `--import=${HOLD_RENAME}`,
      UIE_TEST_HOLD_RENAME: out,
      UIE_TEST_HOLD_RENAME_AFTER: '1',
    });
    let stderr = '';
    child.stderr!.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 40_000);
    try {
      await waitFor(() => stderr.includes(marker));
      assert.ok(
        stderr.includes(marker),
        `the rename was not reached: ${stderr}`,
      );

      child.kill('SIGINT');
      const { code } = await result;

      assert.equal(code, 130, stderr);
      assert.equal(
        stderr,
        marker +
          `uie-batch: export of run r1 interrupted after ${out} was written, ` +
          "before the run's Redis records were set to expire; " +
          'run the same export again to set their expiry\n',
      );
      assert.deepEqual(partialFiles(outDir), []);
      const lines = readFileSync(out, 'utf8').trim().split('\n');
      assert.equal(lines.length, 2);
      assert.equal(JSON.parse(lines[0]).id, '1');
    } finally {
      child.kill('SIGKILL');
      clearTimeout(timer);
    }
  });
});

function partialFiles(dir: string): string[] {
  return readdirSync(dir).filter((name) => name.includes('.partial-'));
}

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';

import {
  deletePrefix,
  readJsonl,
  runCli,
  tempDir,
  uniquePrefix,
} from './helpers.js';

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
});

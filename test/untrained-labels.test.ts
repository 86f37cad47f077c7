import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

import {
  deletePrefix,
  logLines,
  runCli,
  tempDir,
  uniquePrefix,
} from './helpers.js';

describe('when a run has labels the model lacks', () => {
  const dir = tempDir('untrained-labels');
  const prefix = uniquePrefix('untrained-labels');
  const env = {
    UIE_PREFIX: prefix,
    UIE_OUTPUT_DIR: join(dir, 'results'),
    UIE_CHUNKS_PER_JOB: '1',
  };

  after(() => deletePrefix(prefix));

  it('the worker warns once per run', async () => {
    const csv = join(dir, 'docs.csv');
    writeFileSync(csv, 'id,text\n1,张三在北京。\n2,李四在上海。\n');
    const queued = await runCli(
      ['enqueue', csv, '--run', 'r1', '--schema', '人物,颜色'],
      env,
    );
    assert.equal(queued.code, 0, queued.stderr);

    const worker = await runCli(
      ['work', '--threads', '1', '--exit-when-drained'],
      { ...env, LOG_LEVEL: 'warn' },
    );

    assert.equal(worker.code, 0, worker.stderr);
    const warnings = logLines<{ msg: string; run?: string; labels?: string[] }>(
      worker.stderr,
    ).filter((l) =>
      l.msg.startsWith('run has labels the model was not trained on'),
    );
    assert.equal(warnings.length, 1, worker.stderr);
    assert.equal(warnings[0].run, 'r1');
    assert.deepEqual(warnings[0].labels, ['颜色']);
  });
});

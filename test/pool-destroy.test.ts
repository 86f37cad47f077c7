import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

import { ROOT, tempDir } from './helpers.js';

interface ScriptResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

const dir = tempDir('pool-destroy');

/**
 * Runs an ES module in a child process, because a thread ended inside ONNX
 * Runtime aborts the whole process. The body can use `ExtractionPool`,
 * `delay` from node:timers/promises and `modelDir`, the shipped model.
 */
function runScript(name: string, body: string): Promise<ScriptResult> {
  const path = join(dir, `${name}.mjs`);
  const poolUrl = pathToFileURL(join(ROOT, 'dist/src/engine/pool.js')).href;
  writeFileSync(
    path,
    [
      `import { ExtractionPool } from ${JSON.stringify(poolUrl)};`,
      `import { setTimeout as delay } from 'node:timers/promises';`,
      `const modelDir = ${JSON.stringify(join(ROOT, 'models/tiny'))};`,
      body,
    ].join('\n'),
  );
  const child = spawn(process.execPath, [path], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) =>
      resolve({ code, signal, stdout, stderr }),
    );
  });
}

// One ONNX run of 400 texts of 245 characters and 3 labels: batchTokens
// lets them all into one batch, which takes seconds on models/tiny.
const LONG_RUN = `
const pool = new ExtractionPool(1, {
  modelDir, threshold: 0.5, batchTokens: 1_000_000, plugins: [],
  intraOpThreads: 1, memoryMb: 0,
});
pool.provideLexicon(modelDir + '/lexicon.txt');
await pool.warmUp();
const sentence = '1998年3月5日，钟南山在广州市的中山大学附属第一医院接受了记者的采访。';
const text = sentence.repeat(8).slice(0, 245);
const texts = Array.from({ length: 400 }, () => text);
void pool.run({ texts, schema: ['人物', '地点', '机构'] });
`;

describe('when the pool is destroyed during a model run', () => {
  it('waits for the run, then ends', async () => {
    const result = await runScript(
      'destroy-in-run',
      `${LONG_RUN}
await delay(1500);
const started = performance.now();
await pool.destroy(0);
console.log(JSON.stringify({ destroyMs: performance.now() - started }));
`,
    );
    assert.doesNotMatch(result.stderr, /terminate called/);
    assert.equal(result.signal, null, result.stderr);
    assert.equal(result.code, 0, result.stderr);
    const { destroyMs } = JSON.parse(result.stdout) as { destroyMs: number };
    assert.ok(destroyMs < 30_000, `destroy took ${destroyMs} ms`);
  });
});

describe('when the pool is destroyed while threads load', () => {
  it('ends without aborting', async () => {
    const result = await runScript(
      'destroy-at-start',
      `
const pool = new ExtractionPool(2, {
  modelDir, threshold: 0.5, batchTokens: 4096, plugins: [],
  intraOpThreads: 1, memoryMb: 0,
});
pool.provideLexicon(modelDir + '/lexicon.txt');
void pool.warmUp();
await delay(50);
await pool.destroy(0);
console.log('destroyed');
`,
    );
    assert.doesNotMatch(result.stderr, /terminate called/);
    assert.equal(result.signal, null, result.stderr);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout, 'destroyed\n');
  });
});

describe('when a rule plugin never returns', () => {
  it('ends its thread after waitMs', async () => {
    const plugin = join(dir, 'loop-plugin.mjs');
    writeFileSync(
      plugin,
      "export default { name: 'loop', labels: ['时间'], find() { for (;;); } };\n",
    );
    const result = await runScript(
      'destroy-in-plugin',
      `
const pool = new ExtractionPool(1, {
  modelDir, threshold: 0.5, batchTokens: 4096,
  plugins: [${JSON.stringify(plugin)}], intraOpThreads: 1, memoryMb: 0,
});
pool.provideLexicon(modelDir + '/lexicon.txt');
await pool.warmUp();
void pool.run({ texts: ['张三在北京。'], schema: ['人物', '时间'] });
await delay(500);
const started = performance.now();
await pool.destroy(200);
console.log(JSON.stringify({ destroyMs: performance.now() - started }));
`,
    );
    assert.equal(result.signal, null, result.stderr);
    assert.equal(result.code, 0, result.stderr);
    const { destroyMs } = JSON.parse(result.stdout) as { destroyMs: number };
    assert.ok(destroyMs >= 150, `destroy took ${destroyMs} ms`);
    assert.ok(destroyMs < 5000, `destroy took ${destroyMs} ms`);
  });
});

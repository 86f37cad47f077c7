import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import {
  deletePrefix,
  readJsonl,
  ROOT,
  runCli,
  runCliOk,
  tempDir,
  uniquePrefix,
} from './helpers.js';

describe('extract output safety', () => {
  it('keeps the old output when the input is bad', async () => {
    const dir = tempDir('cli-errors');
    const out = join(dir, 'out.jsonl');
    writeFileSync(out, '{"id":"old","entities":[]}\n');
    const input = join(dir, 'bad.csv');
    writeFileSync(input, 'id,body\n1,张三在北京。\n');

    const result = await runCli([
      'extract',
      input,
      '-o',
      out,
      '--threads',
      '1',
    ]);

    assert.equal(result.code, 1);
    assert.match(
      result.stderr,
      /no column "text" in the header; columns are id, body/,
    );
    assert.equal(readFileSync(out, 'utf8'), '{"id":"old","entities":[]}\n');
  });

  it('rejects an output that is the input', async () => {
    const dir = tempDir('cli-errors');
    const input = join(dir, 'same.csv');
    writeFileSync(input, 'id,text\n1,张三在北京。\n');

    const result = await runCli([
      'extract',
      input,
      '-o',
      input,
      '--threads',
      '1',
    ]);

    assert.equal(result.code, 1);
    assert.match(result.stderr, /is also an input; choose another output file/);
    assert.equal(readFileSync(input, 'utf8'), 'id,text\n1,张三在北京。\n');
  });

  it('names a missing output folder', async () => {
    const dir = tempDir('cli-errors');
    const input = join(dir, 'in.csv');
    writeFileSync(input, 'id,text\n1,张三在北京。\n');
    const out = join(dir, 'missing', 'out.jsonl');

    const result = await runCli([
      'extract',
      input,
      '-o',
      out,
      '--threads',
      '1',
    ]);

    assert.equal(result.code, 1);
    assert.match(
      result.stderr,
      new RegExp(`output folder not found: ${join(dir, 'missing')}`),
    );
  });

  it('rejects a second row with the same id', async () => {
    const dir = tempDir('cli-errors');
    const input = join(dir, 'dup.csv');
    writeFileSync(
      input,
      'id,text\n8,周八在武汉市。\n8,重复编号在成都。\n9,李四在上海。\n',
    );
    const out = join(dir, 'out.jsonl');

    const result = await runCli([
      'extract',
      input,
      '-o',
      out,
      '--threads',
      '1',
    ]);

    assert.equal(result.code, 0, result.stderr);
    assert.deepEqual(
      readJsonl<{ id: string }>(out).map((l) => l.id),
      ['8', '9'],
    );
    const rejects = readJsonl<{ line: number; id: string; reason: string }>(
      join(dir, 'out.rejects.jsonl'),
    );
    assert.equal(rejects.length, 1);
    assert.equal(rejects[0].line, 3);
    assert.equal(rejects[0].reason, 'duplicate id; first seen at line 2');
  });
});

describe('queue commands without Redis', () => {
  it('fail fast and hide the password', async () => {
    const started = Date.now();
    const result = await runCli(['status'], {
      REDIS_URL: 'redis://:s3cret@127.0.0.1:1',
    });

    assert.equal(result.code, 1);
    assert.ok(Date.now() - started < 20_000, 'status took longer than 20 s');
    assert.match(
      result.stderr,
      /cannot reach Redis at redis:\/\/:\*\*\*@127\.0\.0\.1:1/,
    );
    assert.doesNotMatch(result.stderr + result.stdout, /s3cret/);
  });

  it('fail a draining worker fast', async () => {
    const started = Date.now();
    const result = await runCli(['work', '--exit-when-drained'], {
      REDIS_URL: 'redis://127.0.0.1:1',
    });

    assert.equal(result.code, 1, result.stderr);
    assert.ok(Date.now() - started < 20_000, 'work took longer than 20 s');
    assert.match(
      result.stderr,
      /uie-batch: cannot reach Redis at redis:\/\/127\.0\.0\.1:1/,
    );
  });
});

describe('when no command is given', () => {
  it('prints the help on stderr and exits 1', async () => {
    const result = await runCli([]);

    assert.equal(result.code, 1);
    assert.equal(result.stdout, '');
    assert.match(result.stderr, /^uie-batch: no command given\n\n/);
    assert.match(result.stderr, /\nUsage: uie-batch <command> \[options\]\n/);
  });

  it('prints the help on stdout for --help', async () => {
    const result = await runCli(['--help']);

    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stderr, '');
    assert.match(result.stdout, /^uie-batch: extract people/);
    assert.match(result.stdout, /\nUsage: uie-batch <command> \[options\]\n/);
  });
});

describe('when asked for the version', () => {
  it('prints the package version', async () => {
    const pkg = JSON.parse(
      readFileSync(join(ROOT, 'package.json'), 'utf8'),
    ) as { version: string };
    const result = await runCli(['--version']);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout, `uie-batch ${pkg.version}\n`);
  });
});

describe('when the CSV uses another delimiter', () => {
  const dir = tempDir('delimiter');

  it('reads tab-separated rows with --delimiter tab', async () => {
    const input = join(dir, 'docs.tsv');
    writeFileSync(input, 'id\ttext\na\t张三在北京市工作，他说“好”。\n');
    const out = join(dir, 'tab.jsonl');
    const result = await runCli([
      'extract',
      input,
      '-o',
      out,
      '--threads',
      '1',
      '--delimiter',
      'tab',
    ]);
    assert.equal(result.code, 0, result.stderr);
    const [line] = readJsonl<{ id: string; entities: { text: string }[] }>(out);
    assert.equal(line.id, 'a');
    assert.ok(line.entities.some((e) => e.text === '北京市'));
  });

  it('rejects a delimiter longer than one character', async () => {
    const input = join(dir, 'docs.csv');
    writeFileSync(input, 'id,text\na,张三。\n');
    const result = await runCli([
      'extract',
      input,
      '-o',
      join(dir, 'x.jsonl'),
      '--delimiter',
      ';;',
    ]);
    assert.equal(result.code, 1);
    assert.match(
      result.stderr,
      /--delimiter: expected one character other than a quote or line break, or "tab", got ";;"/,
    );
  });
});

describe('when an option value starts with "-"', () => {
  const cases: [string[], string][] = [
    [
      ['--threads', '-1'],
      'uie-batch: --threads has no value: the next argument "-1" starts with "-", so it is read as an option. ' +
        'Give --threads a value, or write --threads=-1 for a value that starts with "-". Run uie-batch extract --help\n',
    ],
    [
      ['-o', '--threads', '2'],
      'uie-batch: -o has no value: the next argument "--threads" starts with "-", so it is read as an option. ' +
        'Give -o a value, or write --output=--threads for a value that starts with "-". Run uie-batch extract --help\n',
    ],
  ];
  for (const [args, stderr] of cases) {
    it(`rejects ${args.join(' ')} in one line`, async () => {
      const result = await runCli(['extract', 'docs.csv', ...args]);

      assert.equal(result.code, 1);
      assert.equal(result.stderr, stderr);
    });
  }

  it('reads --threads=-1 as the value', async () => {
    const result = await runCli(['extract', 'docs.csv', '--threads=-1']);

    assert.equal(result.code, 1);
    assert.match(
      result.stderr,
      /^uie-batch: threads \(--threads\): expected an integer from 0 to 256 .*, got "-1"\n$/,
    );
  });
});

describe('when a user error stops a command', () => {
  const prefix = uniquePrefix('cli-errors');

  after(() => deletePrefix(prefix));

  it('names a schema label too long for the model', async () => {
    const dir = tempDir('cli-errors');
    const input = join(dir, 'in.csv');
    writeFileSync(input, 'id,text\n1,张三在北京。\n');

    const result = await runCli([
      'extract',
      input,
      '-o',
      join(dir, 'out.jsonl'),
      '--schema',
      `人物,${'长'.repeat(600)}`,
      '--threads',
      '1',
    ]);

    assert.equal(result.code, 1);
    // One plain line, without a logged stack; the numbers depend on the
    // model's max_seq_len.
    assert.equal(result.stderr.split('\n').length, 2, result.stderr);
    assert.match(
      result.stderr,
      new RegExp(
        `^uie-batch: schema \\(UIE_SCHEMA\\): label "${'长'.repeat(20)}…" is 600 characters long, too long for this model: ` +
          'with max_seq_len \\d+, a label may have at most \\d+ characters',
      ),
    );
  });

  it('prints an invalid plugin module in one line', async () => {
    const dir = tempDir('cli-errors');
    const input = join(dir, 'in.csv');
    writeFileSync(input, 'id,text\n1,张三在北京。\n');
    const plugin = join(dir, 'not-a-plugin.mjs');
    writeFileSync(plugin, 'export default { name: 1 };\n');

    const result = await runCli(
      ['extract', input, '-o', join(dir, 'out.jsonl'), '--threads', '1'],
      { UIE_PLUGINS: `time,${plugin}` },
    );

    assert.equal(result.code, 1);
    assert.equal(
      result.stderr,
      `uie-batch: plugins (UIE_PLUGINS): invalid rule plugin module ${plugin}: expected a default export with a string name, ` +
        'an array of string labels and a find(text) function\n',
    );
  });

  it('prints a model error of a pool thread in one line', async () => {
    const dir = tempDir('cli-errors');
    const input = join(dir, 'in.csv');
    writeFileSync(input, 'id,text\n1,张三在北京。\n');
    // A copy of the shipped model whose vocabulary lacks [UNK]; the pool
    // threads read the vocabulary, so the error crosses from a thread.
    const model = join(dir, 'model');
    cpSync(join(ROOT, 'models/tiny'), model, { recursive: true });
    const vocab = join(model, 'vocab.txt');
    const tokens = readFileSync(vocab, 'utf8').split('\n');
    writeFileSync(
      vocab,
      tokens.map((t) => (t === '[UNK]' ? '[UNK0]' : t)).join('\n'),
    );
    const manifestPath = join(model, 'model.json');
    const manifest = JSON.parse(readFileSync(manifestPath, 'utf8'));
    manifest.sha256[manifest.vocab] = createHash('sha256')
      .update(readFileSync(vocab))
      .digest('hex');
    writeFileSync(manifestPath, JSON.stringify(manifest));

    const result = await runCli(
      ['extract', input, '-o', join(dir, 'out.jsonl'), '--threads', '1'],
      { UIE_MODEL_DIR: model },
    );

    assert.equal(result.code, 1);
    assert.equal(
      result.stderr,
      `uie-batch: vocabulary ${vocab} lacks special tokens: [UNK]; it needs ` +
        '[CLS], [SEP], [UNK], [PAD], each on a line of its own\n',
    );
  });

  it('prints an unfinished export in one line', async () => {
    const dir = tempDir('cli-errors');
    const first = join(dir, 'first.csv');
    writeFileSync(first, 'id,text\n1,张三在北京。\n');
    const second = join(dir, 'second.csv');
    writeFileSync(second, 'id,text\n2,李四在上海。\n');
    const env = { UIE_PREFIX: prefix, UIE_OUTPUT_DIR: join(dir, 'results') };
    // The first document gets a part file, the second is still queued.
    await runCliOk(['enqueue', first, '--run', 'r1'], env);
    await runCliOk(['work', '--threads', '1', '--exit-when-drained'], env);
    await runCliOk(['enqueue', second, '--run', 'r1'], env);

    const result = await runCli(
      ['export', '--run', 'r1', '-o', join(dir, 'out.jsonl')],
      env,
    );

    assert.equal(result.code, 1);
    assert.equal(
      result.stderr,
      'uie-batch: run r1 is not finished: 1 documents have chunks without results. ' +
        'Wait for the workers to drain the queue (uie-batch work --exit-when-drained), or pass --partial\n',
    );
  });
});

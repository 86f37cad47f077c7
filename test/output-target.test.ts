import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import {
  chmodSync,
  closeSync,
  createReadStream,
  existsSync,
  linkSync,
  lstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';

import {
  BIN,
  type CliResult,
  logLines,
  readJsonl,
  tempDir,
} from './helpers.js';

// Two documents and one row without an id, which is rejected.
const CSV = 'id,text\n1,张三在北京工作。\n2,李四去了上海。\n,没有编号的行\n';
const REJECT_LINE = 4;

interface RunOptions {
  cwd: string;
  env?: Record<string, string>;
  /** Runs the CLI as the user `nobody`, through setpriv. */
  asNobody?: boolean;
  /** Open descriptor to give the CLI as standard input; none by default. */
  stdin?: number;
}

/** Runs the CLI in a given working directory and collects its output. */
function runIn(args: string[], options: RunOptions): Promise<CliResult> {
  const command = options.asNobody ? 'setpriv' : process.execPath;
  const prefix = options.asNobody
    ? ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath]
    : [];
  return new Promise((resolvePromise, reject) => {
    const child = spawn(command, [...prefix, BIN, ...args], {
      cwd: options.cwd,
      env: { ...process.env, LOG_LEVEL: 'warn', ...options.env },
      stdio: [options.stdin ?? 'ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d) => (stdout += d));
    child.stderr!.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolvePromise({ code, stdout, stderr }));
  });
}

function setupDir(name: string): { dir: string; input: string } {
  const dir = tempDir(name);
  const input = join(dir, 'docs.csv');
  writeFileSync(input, CSV);
  return { dir, input };
}

function ids(lines: { id: string }[]): string[] {
  return lines.map((line) => line.id);
}

function partialFiles(dir: string): string[] {
  return readdirSync(dir).filter((name) => name.includes('.partial-'));
}

function hasSetpriv(): boolean {
  try {
    execFileSync('setpriv', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

const isRoot = process.getuid?.() === 0;

/** Returns the "extract finished" log line of a CLI's stderr. */
function finishedLog(stderr: string): { rejects?: string } {
  const line = logLines<{ msg: string; rejects?: string }>(stderr).find(
    (l) => l.msg === 'extract finished',
  );
  assert.ok(line, stderr);
  return line;
}

describe('when the output is standard output', () => {
  it('writes only JSONL lines to stdout', async () => {
    const { dir, input } = setupDir('out-dash');

    const result = await runIn(
      ['extract', input, '-o', '-', '--threads', '1'],
      { cwd: dir, env: { LOG_LEVEL: 'info' } },
    );

    assert.equal(result.code, 0, result.stderr);
    const lines = result.stdout.split('\n');
    assert.equal(lines.pop(), '', 'stdout does not end with a line end');
    assert.equal(lines.length, 2, result.stdout);
    const parsed = lines.map((line) => JSON.parse(line) as { id: string });
    assert.deepEqual(ids(parsed), ['1', '2']);
    assert.match(
      result.stderr,
      /2 documents \(2 chunks\) written to standard output; 0 failed, 1 rows rejected \(see docs\.rejects\.jsonl\)/,
    );
  });

  it('puts rejects in the working directory', async () => {
    const { dir, input } = setupDir('out-dash-rejects');

    const result = await runIn(
      ['extract', input, '-o', '-', '--threads', '1'],
      { cwd: dir },
    );

    assert.equal(result.code, 0, result.stderr);
    const rejects = readJsonl<{ line: number; reason: string }>(
      join(dir, 'docs.rejects.jsonl'),
    );
    assert.equal(rejects.length, 1);
    assert.equal(rejects[0].line, REJECT_LINE);
    assert.equal(rejects[0].reason, 'missing id in column "id"');
    assert.deepEqual(partialFiles(dir), []);
  });

  it('puts rejects where --rejects says', async () => {
    const { dir, input } = setupDir('out-dash-rejects-option');
    const rejects = join(dir, 'elsewhere', 'bad-rows.jsonl');
    mkdirSync(join(dir, 'elsewhere'));

    const result = await runIn(
      ['extract', input, '-o', '-', '--rejects', rejects, '--threads', '1'],
      { cwd: dir },
    );

    assert.equal(result.code, 0, result.stderr);
    assert.equal(readJsonl(rejects).length, 1);
    assert.equal(existsSync(join(dir, 'docs.rejects.jsonl')), false);
  });

  it('refuses --rejects that is the output file', async () => {
    const { dir, input } = setupDir('out-rejects-same');
    const out = join(dir, 'out.jsonl');

    const result = await runIn(
      ['extract', input, '-o', out, '--rejects', out, '--threads', '1'],
      { cwd: dir },
    );

    assert.equal(result.code, 1);
    assert.match(
      result.stderr,
      /--rejects .*out\.jsonl is the output file too/,
    );
  });

  it('names rejects of a gzip input without .csv.gz', async () => {
    const { dir, input } = setupDir('out-dash-gzip');
    writeFileSync(`${input}.gz`, gzipSync(readFileSync(input)));

    const result = await runIn(
      ['extract', `${input}.gz`, '-o', '-', '--threads', '1'],
      { cwd: dir },
    );

    assert.equal(result.code, 0, result.stderr);
    assert.equal(readJsonl(join(dir, 'docs.rejects.jsonl')).length, 1);
  });
});

describe('when no row is rejected', () => {
  const CLEAN_CSV = 'id,text\n1,张三在北京工作。\n2,李四去了上海。\n';

  function setupClean(name: string): { dir: string; input: string } {
    const dir = tempDir(name);
    const input = join(dir, 'docs.csv');
    writeFileSync(input, CLEAN_CSV);
    return { dir, input };
  }

  it('writes no rejects file for -o -', async () => {
    const { dir, input } = setupClean('no-rejects-dash');

    const result = await runIn(
      ['extract', input, '-o', '-', '--threads', '1'],
      { cwd: dir },
    );

    assert.equal(result.code, 0, result.stderr);
    assert.equal(existsSync(join(dir, 'docs.rejects.jsonl')), false);
    assert.deepEqual(partialFiles(dir), []);
  });

  it('writes no rejects file beside a file', async () => {
    const { dir, input } = setupClean('no-rejects-file');

    const result = await runIn(
      ['extract', input, '-o', 'out.jsonl', '--threads', '1'],
      { cwd: dir, env: { LOG_LEVEL: 'info' } },
    );

    assert.equal(result.code, 0, result.stderr);
    assert.deepEqual(ids(readJsonl<{ id: string }>(join(dir, 'out.jsonl'))), [
      '1',
      '2',
    ]);
    assert.equal(existsSync(join(dir, 'out.rejects.jsonl')), false);
    assert.deepEqual(partialFiles(dir), []);
    // The log must not name a file that was never written.
    assert.equal(finishedLog(result.stderr).rejects, undefined);
  });

  it('deletes the rejects file of an earlier run', async () => {
    const { dir, input } = setupDir('stale-rejects');
    const rejects = join(dir, 'out.rejects.jsonl');
    const first = await runIn(
      ['extract', input, '-o', 'out.jsonl', '--threads', '1'],
      { cwd: dir, env: { LOG_LEVEL: 'info' } },
    );
    assert.equal(first.code, 0, first.stderr);
    assert.equal(readJsonl(rejects).length, 1);
    assert.equal(finishedLog(first.stderr).rejects, 'out.rejects.jsonl');
    writeFileSync(input, CLEAN_CSV);

    const second = await runIn(
      ['extract', input, '-o', 'out.jsonl', '--threads', '1'],
      { cwd: dir },
    );

    assert.equal(second.code, 0, second.stderr);
    assert.equal(existsSync(rejects), false);
    assert.doesNotMatch(second.stderr, /rejects\.jsonl/);
  });

  it('keeps the earlier rejects file when extract fails', async () => {
    const { dir, input } = setupDir('failed-keeps-rejects');
    const rejects = join(dir, 'out.rejects.jsonl');
    const first = await runIn(
      ['extract', input, '-o', 'out.jsonl', '--threads', '1'],
      { cwd: dir },
    );
    assert.equal(first.code, 0, first.stderr);
    const earlier = readFileSync(rejects, 'utf8');
    // A header without the text column fails before any row is read.
    writeFileSync(input, 'id,body\n1,张三在北京工作。\n');

    const second = await runIn(
      ['extract', input, '-o', 'out.jsonl', '--threads', '1'],
      { cwd: dir },
    );

    assert.equal(second.code, 1, second.stderr);
    assert.equal(readFileSync(rejects, 'utf8'), earlier);
    assert.deepEqual(partialFiles(dir), []);
  });
});

describe('when the output is a symbolic link', () => {
  it('keeps the link and updates its target', async () => {
    const { dir, input } = setupDir('out-link');
    const data = join(dir, 'data');
    mkdirSync(data);
    const target = join(data, 'real.jsonl');
    writeFileSync(target, '{"id":"old","entities":[]}\n');
    const link = join(dir, 'link.jsonl');
    symlinkSync(target, link);

    const result = await runIn(
      ['extract', input, '-o', link, '--threads', '1'],
      { cwd: dir },
    );

    assert.equal(result.code, 0, result.stderr);
    assert.ok(lstatSync(link).isSymbolicLink(), 'the link was replaced');
    assert.equal(readlinkSync(link), target);
    assert.deepEqual(ids(readJsonl<{ id: string }>(target)), ['1', '2']);
    assert.equal(readJsonl(join(dir, 'link.rejects.jsonl')).length, 1);
    assert.deepEqual(partialFiles(dir), []);
    assert.deepEqual(partialFiles(data), []);
  });

  it('writes through a link to /dev/null', async () => {
    const { dir, input } = setupDir('out-null');
    const link = join(dir, 'discard');
    symlinkSync('/dev/null', link);

    const result = await runIn(
      ['extract', input, '-o', link, '--threads', '1'],
      { cwd: dir },
    );

    assert.equal(result.code, 0, result.stderr);
    assert.ok(lstatSync(link).isSymbolicLink(), 'the link was replaced');
    assert.ok(statSync('/dev/null').isCharacterDevice());
    assert.equal(readJsonl(join(dir, 'docs.rejects.jsonl')).length, 1);
    assert.match(result.stderr, /\(see docs\.rejects\.jsonl\)/);
  });
});

describe('when the output is a FIFO', () => {
  it('sends the lines to its reader', async () => {
    const { dir, input } = setupDir('out-fifo');
    const fifo = join(dir, 'lines.fifo');
    execFileSync('mkfifo', [fifo]);
    const received = new Promise<string>((resolvePromise, reject) => {
      let text = '';
      createReadStream(fifo, 'utf8')
        .on('data', (chunk) => (text += chunk))
        .on('end', () => resolvePromise(text))
        .on('error', reject);
    });

    const result = await runIn(
      ['extract', input, '-o', fifo, '--threads', '1'],
      { cwd: dir },
    );
    const text = await received;

    assert.equal(result.code, 0, result.stderr);
    const lines = text.split('\n').filter(Boolean);
    const parsed = lines.map((line) => JSON.parse(line) as { id: string });
    assert.deepEqual(ids(parsed), ['1', '2']);
    assert.ok(lstatSync(fifo).isFIFO(), 'the FIFO was replaced');
    assert.equal(readJsonl(join(dir, 'docs.rejects.jsonl')).length, 1);
    assert.deepEqual(partialFiles(dir), []);
  });
});

describe('when the input is a directory', () => {
  for (const command of ['extract', 'enqueue']) {
    it(`stops ${command} with one line`, async () => {
      const dir = tempDir('in-dir');
      mkdirSync(join(dir, 'adir.csv'));
      const args =
        command === 'extract'
          ? ['extract', 'adir.csv', '-o', 'out.jsonl']
          : ['enqueue', 'adir.csv'];

      // An unreachable Redis shows that enqueue fails before connecting.
      const result = await runIn(args, {
        cwd: dir,
        env: { REDIS_URL: 'redis://127.0.0.1:1' },
      });

      assert.equal(result.code, 1);
      assert.equal(
        result.stderr,
        'uie-batch: adir.csv: is a directory, expected a CSV file\n',
      );
      assert.equal(existsSync(join(dir, 'out.jsonl')), false);
    });
  }
});

describe('when the output is a directory', () => {
  it('stops extract before reading', async () => {
    const { dir, input } = setupDir('out-dir');
    mkdirSync(join(dir, 'out'));

    const result = await runIn(['extract', input, '-o', 'out'], { cwd: dir });

    assert.equal(result.code, 1);
    assert.equal(
      result.stderr,
      'uie-batch: -o out: is a directory; give a file path\n',
    );
    assert.equal(existsSync(join(dir, 'out.rejects.jsonl')), false);
  });

  it('stops export before connecting', async () => {
    const dir = tempDir('export-dir');
    mkdirSync(join(dir, 'out'));

    const result = await runIn(['export', '--run', 'r1', '-o', 'out'], {
      cwd: dir,
      env: { REDIS_URL: 'redis://127.0.0.1:1' },
    });

    assert.equal(result.code, 1);
    assert.equal(
      result.stderr,
      'uie-batch: -o out: is a directory; give a file path\n',
    );
  });
});

describe('when the output folder cannot be written', () => {
  it('names a parent that is a file', async () => {
    const { dir, input } = setupDir('out-notdir');
    const out = join(input, 'out.jsonl');

    for (const args of [
      ['extract', input, '-o', out],
      ['export', '--run', 'r1', '-o', out],
    ]) {
      const result = await runIn(args, {
        cwd: dir,
        env: { REDIS_URL: 'redis://127.0.0.1:1' },
      });

      assert.equal(result.code, 1);
      assert.equal(
        result.stderr,
        `uie-batch: -o ${out}: ${input} is not a folder; give a path inside a folder\n`,
      );
    }
  });

  // Root ignores permission bits, so as root the CLI runs as the user nobody.
  const canDrop = !isRoot || hasSetpriv();
  it(
    'names a read-only folder',
    { skip: canDrop ? false : 'running as root without setpriv' },
    async () => {
      const { dir, input } = setupDir('out-readonly');
      // tempDir makes folders with mode 0700, which the user nobody cannot
      // enter.
      chmodSync(dir, 0o755);
      const folder = join(dir, 'locked');
      mkdirSync(folder, { mode: 0o555 });
      chmodSync(folder, 0o555);
      const out = join(folder, 'out.jsonl');

      const result = await runIn(['extract', input, '-o', out], {
        cwd: dir,
        asNobody: isRoot,
      });

      assert.equal(result.code, 1);
      assert.equal(
        result.stderr,
        `uie-batch: -o ${out}: cannot write to output folder ${folder}: EACCES: permission denied; choose another folder or change its permissions\n`,
      );
      assert.deepEqual(readdirSync(folder), []);
    },
  );

  it('reports a failed open in one line', async () => {
    const { dir, input } = setupDir('out-open');
    // 246 bytes is a valid name, and so is its rejects file name, but the
    // temporary name beside it is over the 255-byte limit of Linux file
    // systems, so opening it fails with ENAMETOOLONG.
    const name = `${'a'.repeat(240)}.jsonl`;

    const result = await runIn(
      ['extract', input, '-o', name, '--threads', '1'],
      { cwd: dir },
    );

    assert.equal(result.code, 1);
    const lines = result.stderr.split('\n').filter(Boolean);
    assert.equal(lines.length, 1, result.stderr);
    assert.match(
      lines[0],
      new RegExp(
        `^uie-batch: output ${name}: cannot open ${dir}/\\.${name}\\.partial-\\d+ for writing: ENAMETOOLONG: name too long; choose a shorter file name$`,
      ),
    );
    assert.deepEqual(readdirSync(dir).sort(), ['docs.csv']);
  });
});

describe('when -o points at the input through a link', () => {
  it('rejects the output', async () => {
    const { dir, input } = setupDir('out-input-link');
    symlinkSync(input, join(dir, 'alias.jsonl'));

    const result = await runIn(['extract', input, '-o', 'alias.jsonl'], {
      cwd: dir,
    });

    assert.equal(result.code, 1);
    assert.equal(
      result.stderr,
      'uie-batch: -o alias.jsonl: the output is also an input; choose another output file\n',
    );
    assert.equal(readFileSync(input, 'utf8'), CSV);
  });
});

describe('when -o is the file redirected to standard input', () => {
  /** Runs extract with standard input read from a file. */
  async function extractFromFile(
    input: string,
    output: string,
    cwd: string,
  ): Promise<CliResult> {
    const fd = openSync(input, 'r');
    try {
      return await runIn(['extract', '-', '-o', output, '--threads', '1'], {
        cwd,
        stdin: fd,
      });
    } finally {
      closeSync(fd);
    }
  }

  it('rejects the output', async () => {
    const { dir, input } = setupDir('out-stdin-same');

    const result = await extractFromFile(input, 'docs.csv', dir);

    assert.equal(result.code, 1);
    assert.equal(
      result.stderr,
      'uie-batch: -o docs.csv: the output is also an input; choose another output file\n',
    );
    assert.equal(readFileSync(input, 'utf8'), CSV);
    assert.deepEqual(readdirSync(dir).sort(), ['docs.csv']);
  });

  it('writes another output', async () => {
    const { dir, input } = setupDir('out-stdin-other');

    const result = await extractFromFile(input, 'out.jsonl', dir);

    assert.equal(result.code, 0, result.stderr);
    assert.deepEqual(ids(readJsonl<{ id: string }>(join(dir, 'out.jsonl'))), [
      '1',
      '2',
    ]);
    assert.equal(readFileSync(input, 'utf8'), CSV);
  });
});

describe('when -o is a hard link to the input', () => {
  it('rejects the output', async () => {
    const { dir, input } = setupDir('out-input-hard-link');
    linkSync(input, join(dir, 'alias.jsonl'));

    const result = await runIn(['extract', input, '-o', 'alias.jsonl'], {
      cwd: dir,
    });

    assert.equal(result.code, 1);
    assert.equal(
      result.stderr,
      'uie-batch: -o alias.jsonl: the output is also an input; choose another output file\n',
    );
    assert.equal(readFileSync(input, 'utf8'), CSV);
  });
});

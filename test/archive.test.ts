import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  mkdirSync,
  readdirSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { dirname, join } from 'node:path';
import { gzipSync } from 'node:zlib';

import { Queue } from 'bullmq';
import iconv from 'iconv-lite';
import { Redis } from 'ioredis';
import pino, { type Logger } from 'pino';

import {
  readArchiveDocuments,
  type ArchiveEvent,
} from '../src/producer/archive-source.js';
import { RunStore } from '../src/queue/run-store.js';
import {
  deletePrefix,
  readJsonl,
  REDIS_URL,
  ROOT,
  runCli,
  tempDir,
  uniquePrefix,
} from './helpers.js';

/** Writes a file below root, creating its folders; gzips paths ending in .gz. */
function put(root: string, path: string, content: string): void {
  const file = join(root, path);
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, path.endsWith('.gz') ? gzipSync(content) : content);
}

function jsonl(rows: object[]): string {
  return rows.map((r) => JSON.stringify(r)).join('\n') + '\n';
}

async function collect(
  dir: string,
  log: Logger = pino({ level: 'silent' }),
): Promise<ArchiveEvent[]> {
  const events: ArchiveEvent[] = [];
  for await (const event of readArchiveDocuments(dir, log)) events.push(event);
  return events;
}

interface LogLine {
  level: number;
  msg: string;
  link?: string;
  target?: string;
}

/** Returns a debug-level logger and the parsed lines it writes. */
function capturingLogger(): { log: Logger; lines: LogLine[] } {
  const lines: LogLine[] = [];
  const log = pino(
    { level: 'debug' },
    { write: (line: string) => lines.push(JSON.parse(line) as LogLine) },
  );
  return { log, lines };
}

function documentsOf(events: ArchiveEvent[]): Record<string, string> {
  return Object.fromEntries(
    events.flatMap((e) =>
      e.type === 'document' ? [[e.document.id, e.document.text]] : [],
    ),
  );
}

function rejectsOf(events: ArchiveEvent[]) {
  return events.flatMap((e) => (e.type === 'reject' ? [e.reject] : []));
}

describe('archive source', () => {
  const dir = tempDir('archive-source');

  before(() => {
    put(dir, 'news.csv', 'id,text\n1,张伟在北京大学读书。\n2,李娜去了上海。\n');
    put(dir, 'more.csv.gz', 'id,text\n1,王芳在广州工作。\n');
    put(
      dir,
      'sub/weibo.jsonl.gz',
      jsonl([{ id: 1, text: '刘洋昨天到了深圳。' }]) +
        '{"id": "2", "text": \n' +
        jsonl([{ id: 'a', text: '陈静住在南京。' }, { id: 'b' }]),
    );
    put(dir, 'sub/notes.txt', '周杰在杭州开会。');
    put(dir, 'sub/old.txt.gz', '孙丽去年回到成都。');
    put(dir, 'sub/.draft.jsonl', jsonl([{ id: 'x', text: '草稿。' }]));
    put(dir, '.trash/gone.txt', '已删除。');
    put(dir, 'readme.md', '说明');
    mkdirSync(join(dir, 'broken'));
    writeFileSync(join(dir, 'broken/data.jsonl.gz'), 'not gzip data');
  });

  after(() => rmSync(dir, { recursive: true, force: true }));

  it('reads each file kind with namespaced ids', async () => {
    const docs = documentsOf(await collect(dir));
    assert.deepEqual(docs, {
      'more.csv.gz#1': '王芳在广州工作。',
      'news.csv#1': '张伟在北京大学读书。',
      'news.csv#2': '李娜去了上海。',
      'sub/notes.txt': '周杰在杭州开会。',
      'sub/old.txt.gz': '孙丽去年回到成都。',
      'sub/weibo.jsonl.gz#1': '刘洋昨天到了深圳。',
      'sub/weibo.jsonl.gz#a': '陈静住在南京。',
    });
  });

  it('yields documents in sorted path order', async () => {
    const ids = (await collect(dir)).flatMap((e) =>
      e.type === 'document' ? [e.document.id] : [],
    );
    assert.deepEqual(ids, [
      'more.csv.gz#1',
      'news.csv#1',
      'news.csv#2',
      'sub/notes.txt',
      'sub/old.txt.gz',
      'sub/weibo.jsonl.gz#1',
      'sub/weibo.jsonl.gz#a',
    ]);
  });

  it('rejects a bad JSONL line with file, line and reason', async () => {
    const rejects = rejectsOf(await collect(dir));
    const file = join(dir, 'sub/weibo.jsonl.gz');
    const badJson = rejects.find((r) => r.file === file && r.line === 2);
    assert.ok(badJson, JSON.stringify(rejects));
    assert.match(badJson.reason, /^invalid JSON: /);
    const noText = rejects.find((r) => r.file === file && r.line === 4);
    assert.ok(noText, JSON.stringify(rejects));
    assert.equal(noText.reason, 'missing field "text"');
    assert.equal(noText.id, 'sub/weibo.jsonl.gz#b');
  });

  it('rejects a JSONL id with a NUL byte', async () => {
    const nulDir = tempDir('archive-nul-id');
    put(
      nulDir,
      'posts.jsonl',
      jsonl([{ id: 'a\u0000b', text: '张伟在北京。' }]),
    );
    const rejects = rejectsOf(await collect(nulDir));
    rmSync(nulDir, { recursive: true, force: true });

    assert.deepEqual(
      rejects.map((r) => [r.line, r.reason]),
      [[1, 'NUL byte in field "id"']],
    );
  });

  it('rejects a file that is not gzip data', async () => {
    const rejects = rejectsOf(await collect(dir));
    const broken = rejects.find(
      (r) => r.file === join(dir, 'broken/data.jsonl.gz'),
    );
    assert.ok(broken, JSON.stringify(rejects));
    assert.match(broken.reason, /^invalid gzip data: /);
    assert.equal(rejects.length, 3);
  });

  it('keeps the line numbers of JSONL documents', async () => {
    const events = await collect(dir);
    const doc = events.find(
      (e) => e.type === 'document' && e.document.id === 'sub/weibo.jsonl.gz#a',
    );
    assert.equal(doc?.type === 'document' && doc.document.line, 3);
  });
});

describe('archive source with CSV files it cannot use', () => {
  const dir = tempDir('archive-csv-faults');

  before(() => {
    put(dir, 'body.csv', 'id,body\n1,张伟在北京大学读书。\n');
    writeFileSync(
      join(dir, 'gbk.csv'),
      iconv.encode('id,text\n1,张伟在北京大学读书，李娜去了上海。\n', 'gbk'),
    );
  });

  after(() => rmSync(dir, { recursive: true, force: true }));

  it('rejects a text file as a whole', async () => {
    const txt = tempDir('archive-txt-faults');
    writeFileSync(join(txt, 'bad.txt'), Buffer.from([0xff, 0xfe, 0x20]));
    put(txt, 'empty.txt', ' \n');
    try {
      const rejects = rejectsOf(await collect(txt));
      assert.deepEqual(rejects, [
        {
          file: join(txt, 'bad.txt'),
          line: 0,
          id: 'bad.txt',
          reason: 'invalid UTF-8 bytes',
        },
        {
          file: join(txt, 'empty.txt'),
          line: 0,
          id: 'empty.txt',
          reason: 'empty file',
        },
      ]);
    } finally {
      rmSync(txt, { recursive: true, force: true });
    }
  });

  it('gives advice that scan can follow', async () => {
    const rejects = rejectsOf(await collect(dir));

    assert.equal(rejects.length, 2);
    for (const reject of rejects) {
      assert.doesNotMatch(reject.reason, /--[a-z]/);
      assert.match(reject.reason, /\. scan reads archive files as UTF-8, /);
    }
    assert.match(rejects[0].reason, /no column "text" in the header/);
    assert.match(rejects[1].reason, /does not look like utf-8/);
  });
});

describe('when scanning an archive', () => {
  const prefix = uniquePrefix('archive');
  const work = tempDir('archive');
  const archive = join(work, 'archive');
  const results = join(work, 'results');
  const env = { UIE_PREFIX: prefix, UIE_OUTPUT_DIR: results };
  const queueName = 'uie-batch';
  let redis: Redis;
  let queue: Queue;
  const runs: string[] = [];

  const store = (run: string) => new RunStore(redis, prefix, queueName, run);

  const scan = async (args: string[] = []) => {
    const result = await runCli(['scan', '--archive', archive, ...args], env);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout, '');
    return result.stderr;
  };

  const runOf = (report: string): string => {
    const match = /queued into run (\S+),/.exec(report);
    assert.ok(match, report);
    return match[1];
  };

  const listResults = (): string[] => {
    try {
      return readdirSync(results).sort();
    } catch {
      return [];
    }
  };

  const runDocuments = async (run: string): Promise<string[]> => {
    const ids: string[] = [];
    for await (const doc of store(run).documents()) ids.push(doc.id);
    return ids;
  };

  before(() => {
    redis = new Redis(REDIS_URL);
    queue = new Queue(queueName, { connection: redis, prefix });
    put(
      archive,
      '2026/01/news.csv',
      'id,text\n' +
        '1,张伟在北京大学读书。\n' +
        '2,李娜去了上海。\n' +
        '3,王芳在广州工作。\n',
    );
    put(
      archive,
      '2026/01/weibo.jsonl',
      jsonl([
        { id: 'w1', text: '刘洋昨天到了深圳。' },
        { id: 'w2', text: '陈静住在南京。' },
      ]),
    );
    put(archive, '2026/02/notes.txt.gz', '周杰在杭州开会。');
  });

  after(async () => {
    await queue.close();
    redis.disconnect();
    await deletePrefix(prefix);
    rmSync(work, { recursive: true, force: true });
  });

  it('queues every document on the first scan', async () => {
    const report = await scan();
    assert.match(
      report,
      /6 documents seen, 6 new, 0 changed, 0 unchanged, 0 rejected/,
    );
    const run = runOf(report);
    runs.push(run);
    assert.match(run, /^scan-\d{8}T\d{6}Z(-\d+)?$/);
    const stats = await store(run).stats();
    assert.equal(stats.documents, 6);
    assert.equal(stats.autoExport, 1);
    assert.ok(stats.enqueuedAt > 0);
  });

  it('creates no run when nothing changed', async () => {
    const filesBefore = listResults();
    const jobsBefore = await queue.count();
    const report = await scan();
    assert.match(
      report,
      /6 documents seen, 0 new, 0 changed, 6 unchanged, 0 rejected/,
    );
    assert.match(report, /nothing changed, no run created/);
    assert.deepEqual(await store('any').runs(), runs);
    assert.deepEqual(listResults(), filesBefore);
    assert.equal(await queue.count(), jobsBefore);
  });

  it('queues only the changed and the added documents', async () => {
    put(
      archive,
      '2026/01/weibo.jsonl',
      jsonl([
        { id: 'w1', text: '刘洋昨天到了深圳。' },
        { id: 'w2', text: '陈静搬到了苏州。' },
      ]),
    );
    put(
      archive,
      '2026/03/forum.jsonl.gz',
      jsonl([
        { id: 'f1', text: '赵磊在武汉大学任教。' },
        { id: 'f2', text: '{"id":' },
      ]) + '{broken\n',
    );
    const report = await scan();
    assert.match(
      report,
      /8 documents seen, 2 new, 1 changed, 5 unchanged, 1 rejected/,
    );
    const run = runOf(report);
    runs.push(run);
    assert.notEqual(run, runs[0]);
    assert.deepEqual(await runDocuments(run), [
      '2026/01/weibo.jsonl#w2',
      '2026/03/forum.jsonl.gz#f1',
      '2026/03/forum.jsonl.gz#f2',
    ]);
    const rejects = readJsonl(join(results, run, 'rejects.jsonl'));
    assert.equal(rejects.length, 1);
    assert.equal(rejects[0].line, 3);
  });

  it('rejects a run name that exists', async () => {
    const result = await runCli(
      ['scan', '--archive', archive, '--run', runs[0]],
      env,
    );
    assert.equal(result.code, 1);
    assert.match(
      result.stderr,
      new RegExp(`run ${runs[0]} already exists; a scan queues into a new run`),
    );
  });

  it('stores the schema of a scan run', async () => {
    assert.deepEqual(await store(runs[0]).schema(), [
      '人物',
      '地点',
      '机构',
      '时间',
    ]);
    const csv = join(work, 'extra.csv');
    writeFileSync(csv, 'id,text\nx1,张伟在北京大学读书。\n');
    const result = await runCli(
      ['enqueue', csv, '--run', runs[0], '--schema', '人物'],
      env,
    );
    assert.equal(result.code, 1, result.stdout);
    assert.match(
      result.stderr,
      new RegExp(
        `run ${runs[0]} was queued with schema 人物,地点,机构,时间, not 人物\\.`,
      ),
    );
    assert.equal((await store(runs[0]).stats()).documents, 6);
  });

  it('leaves one scheduler after three concurrent registrations', async () => {
    const args = ['schedule', '--archive', archive, '--cron', '0 2 * * *'];
    const registrations = await Promise.all([
      runCli([...args, '--tz', 'Asia/Shanghai'], env),
      runCli([...args, '--tz', 'Asia/Shanghai'], env),
      runCli([...args, '--tz', 'Asia/Shanghai'], env),
    ]);
    for (const r of registrations) assert.equal(r.code, 0, r.stderr);
    assert.match(
      registrations[0].stderr,
      /in time zone Asia\/Shanghai; next scan /,
    );
    const schedulers = await queue.getJobSchedulers();
    assert.equal(schedulers.length, 1);
    assert.equal(schedulers[0].name, 'scan');
    assert.equal(schedulers[0].pattern, '0 2 * * *');
    assert.equal(schedulers[0].tz, 'Asia/Shanghai');
    assert.deepEqual(schedulers[0].template?.data, { archive });
  });

  it('prints UTC when no time zone is given', async () => {
    const result = await runCli(
      ['schedule', '--archive', archive, '--cron', '0 2 * * *'],
      env,
    );
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stderr, /in time zone UTC; /);
    const schedulers = await queue.getJobSchedulers();
    assert.equal(schedulers.length, 1);
    assert.equal(schedulers[0].tz, 'UTC');
  });

  it('rejects an invalid cron pattern or time zone', async () => {
    const base = ['schedule', '--archive', archive];
    const cron = await runCli([...base, '--cron', 'every night'], env);
    assert.equal(cron.code, 1);
    assert.match(cron.stderr, /--cron: invalid cron pattern "every night"/);
    const tz = await runCli(
      [...base, '--cron', '0 2 * * *', '--tz', 'Asia/Atlantis'],
      env,
    );
    assert.equal(tz.code, 1);
    assert.match(
      tz.stderr,
      /--tz: expected an IANA time zone such as UTC or Asia\/Shanghai, got "Asia\/Atlantis"/,
    );
  });

  // The scheduler registered above keeps a delayed job for 02:00; the
  // worker must still see the queue as drained.
  it('exports each scan run after a worker drains the queue', async () => {
    put(
      archive,
      '2026/01/news.csv',
      'id,text\n' +
        '1,张伟在北京大学读书。\n' +
        '2,李娜去了上海。\n' +
        '3,王芳在厦门工作。\n',
    );
    await queue.add('scan', { archive });
    const worker = await runCli(
      ['work', '--threads', '1', '--exit-when-drained'],
      env,
    );
    assert.equal(worker.code, 0, worker.stderr);

    const all = await store('any').runs();
    assert.equal(all.length, 3);
    const fromJob = all.find((r) => !runs.includes(r))!;
    const expected: Record<string, number> = {
      [runs[0]]: 6,
      [runs[1]]: 3,
      [fromJob]: 1,
    };
    for (const [run, count] of Object.entries(expected)) {
      const lines = readJsonl<{ id: string; error?: string }>(
        join(results, `${run}.jsonl`),
      );
      assert.equal(lines.length, count, run);
      assert.deepEqual(
        lines.map((l) => l.id),
        await runDocuments(run),
      );
      assert.equal(lines.filter((l) => l.error).length, 0, run);
      assert.ok((await store(run).stats()).exportedAt > 0, run);
    }
    const [changed] = readJsonl<{ id: string }>(
      join(results, `${fromJob}.jsonl`),
    );
    assert.equal(changed.id, '2026/01/news.csv#3');
  });

  it('removes the scheduler with --remove', async () => {
    const result = await runCli(
      ['schedule', '--remove', '--archive', archive],
      env,
    );
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stderr, /^scheduler \S+ of .+ removed$/m);
    assert.equal((await queue.getJobSchedulers()).length, 0);
  });
});

describe('when the archive has symbolic links', () => {
  const prefix = uniquePrefix('archive-links');
  const work = tempDir('archive-links');
  const archive = join(work, 'archive');
  const outside = join(work, 'outside');
  const env = { UIE_PREFIX: prefix, UIE_OUTPUT_DIR: join(work, 'results') };

  before(() => {
    put(archive, 'a.csv', 'id,text\n1,张伟在北京大学读书。\n');
    put(archive, 'sub/b.txt', '李娜去了上海。');
    put(outside, 'secret.csv', 'id,text\n1,王芳在广州工作。\n');
    symlinkSync(join(outside, 'secret.csv'), join(archive, 'out.csv'));
    symlinkSync(outside, join(archive, 'out-folder'));
    symlinkSync('a.csv', join(archive, 'same.csv'));
    symlinkSync('sub', join(archive, 'same-folder'));
    symlinkSync('moved.csv', join(archive, 'dangling.csv'));
  });

  after(async () => {
    await deletePrefix(prefix);
    rmSync(work, { recursive: true, force: true });
  });

  it('reads each file once and nothing outside', async () => {
    const docs = documentsOf(await collect(archive));
    assert.deepEqual(docs, {
      'a.csv#1': '张伟在北京大学读书。',
      'sub/b.txt': '李娜去了上海。',
    });
  });

  it('warns about each link that leads outside or nowhere', async () => {
    const { log, lines } = capturingLogger();
    await collect(archive, log);
    const warned = lines.filter((l) => l.level === 40).map((l) => l.link);
    assert.deepEqual(warned, [
      join(archive, 'dangling.csv'),
      join(archive, 'out-folder'),
      join(archive, 'out.csv'),
    ]);
    const dangling = lines.find(
      (l) => l.link === join(archive, 'dangling.csv'),
    );
    assert.equal(
      dangling?.msg,
      'symbolic link in the archive leads nowhere; skipped',
    );
    const warning = lines.find((l) => l.link === join(archive, 'out.csv'));
    assert.equal(
      warning?.msg,
      'symbolic link leads outside the archive folder; skipped',
    );
    assert.equal(warning?.target, join(outside, 'secret.csv'));
  });

  it('scan counts only the files inside', async () => {
    const result = await runCli(['scan', '--archive', archive], env);
    assert.equal(result.code, 0, result.stderr);
    assert.match(
      result.stderr,
      /2 documents seen, 2 new, 0 changed, 0 unchanged, 0 rejected/,
    );
    assert.match(result.stderr, /symbolic link leads outside the archive/);
    assert.ok(
      result.stderr.includes(`"link":"${join(archive, 'out.csv')}"`),
      result.stderr,
    );
  });
});

describe('when a scan run is forgotten or its documents fail', () => {
  const prefix = uniquePrefix('archive-release');
  const work = tempDir('archive-release');
  const archive = join(work, 'archive');
  const results = join(work, 'results');
  const faulty = join(ROOT, 'test/fixtures/faulty-plugin.mjs');
  const env = {
    UIE_PREFIX: prefix,
    UIE_OUTPUT_DIR: results,
    // The faulty plugin throws on 【抛出】, for a label of its own.
    UIE_PLUGINS: `time,${faulty}`,
    UIE_SCHEMA: '人物,地点,机构,时间,股票',
    UIE_ATTEMPTS: '1',
  };

  const scan = async () => {
    const result = await runCli(['scan', '--archive', archive], env);
    assert.equal(result.code, 0, result.stderr);
    return result.stderr;
  };

  const runOf = (report: string): string => {
    const match = /queued into run (\S+),/.exec(report);
    assert.ok(match, report);
    return match[1];
  };

  before(() => {
    put(
      archive,
      'news.csv',
      'id,text\n1,张伟在北京大学读书。\n2,【抛出】李娜去了上海。\n',
    );
  });

  after(async () => {
    await deletePrefix(prefix);
    rmSync(work, { recursive: true, force: true });
  });

  it('queues a forgotten run again', async () => {
    const run = runOf(await scan());

    const forget = await runCli(['forget', '--run', run, '--force'], env);

    assert.equal(forget.code, 0, forget.stderr);
    assert.match(
      forget.stderr,
      /2 documents to be queued again by the next scan of its archive/,
    );
    assert.match(
      await scan(),
      /2 documents seen, 2 new, 0 changed, 0 unchanged/,
    );
  });

  it('queues failed documents again', async () => {
    const worker = await runCli(
      ['work', '--threads', '1', '--exit-when-drained'],
      env,
    );
    assert.equal(worker.code, 0, worker.stderr);

    const report = await scan();

    assert.match(report, /2 documents seen, 1 new, 0 changed, 1 unchanged/);
    const run = runOf(report);
    const forget = await runCli(['forget', '--run', run, '--force'], env);
    assert.equal(forget.code, 0, forget.stderr);
  });

  it('keeps an exported run done', async () => {
    const worker = await runCli(
      ['work', '--threads', '1', '--exit-when-drained'],
      env,
    );
    assert.equal(worker.code, 0, worker.stderr);
    const exported = readdirSync(results).filter((f) => f.endsWith('.jsonl'));
    assert.ok(exported.length > 0);

    for (const file of exported) {
      const run = file.replace(/\.jsonl$/, '');
      const forget = await runCli(['forget', '--run', run], env);
      assert.equal(forget.code, 0, forget.stderr);
      assert.doesNotMatch(forget.stderr, /queued again/);
    }
    assert.match(
      await scan(),
      /2 documents seen, 1 new, 0 changed, 1 unchanged/,
    );
  });
});

describe('when a scan pass stopped before marking its run queued', () => {
  const prefix = uniquePrefix('archive-stranded');
  const work = tempDir('archive-stranded');
  const archive = join(work, 'archive');
  const results = join(work, 'results');
  const env = { UIE_PREFIX: prefix, UIE_OUTPUT_DIR: results };
  let redis: Redis;

  before(() => {
    redis = new Redis(REDIS_URL);
    put(
      archive,
      'news.csv',
      'id,text\n1,张伟在北京大学读书。\n2,李娜去了上海。\n',
    );
  });

  after(async () => {
    redis.disconnect();
    await deletePrefix(prefix);
    rmSync(work, { recursive: true, force: true });
  });

  it('exports that run at the next pass', async () => {
    const first = await runCli(['scan', '--archive', archive], env);
    assert.equal(first.code, 0, first.stderr);
    const run = /queued into run (\S+),/.exec(first.stderr)?.[1];
    assert.ok(run, first.stderr);
    // A pass that dies after it queued documents and stored their hashes
    // leaves its run without the enqueuedAt mark.
    const stats = `${prefix}:uie-batch:uie:run:${run}:stats`;
    assert.equal(await redis.hdel(stats, 'enqueuedAt'), 1);
    const worker = await runCli(
      ['work', '--threads', '1', '--exit-when-drained'],
      env,
    );
    assert.equal(worker.code, 0, worker.stderr);
    const exported = join(results, `${run}.jsonl`);
    assert.deepEqual(
      readdirSync(results).filter((f) => f.endsWith('.jsonl')),
      [],
    );

    const second = await runCli(['scan', '--archive', archive], env);

    assert.equal(second.code, 0, second.stderr);
    assert.match(
      second.stderr,
      /2 documents seen, 0 new, 0 changed, 2 unchanged/,
    );
    assert.match(
      second.stderr,
      new RegExp(
        `run ${run} of an earlier pass that stopped early is now marked as queued`,
      ),
    );
    const lines = readJsonl<{ id: string; error?: string }>(exported);
    assert.deepEqual(
      lines.map((l) => l.id),
      ['news.csv#1', 'news.csv#2'],
    );
    assert.equal(lines.filter((l) => l.error).length, 0);
  });
});

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

import {
  csvField,
  deletePrefix,
  newsParagraphs,
  readJsonl,
  runCli,
  tempDir,
  uniquePrefix,
} from './helpers.js';

interface Line {
  id: string;
  entities: { label: string; text: string; start: number; end: number }[];
  error?: string;
}

const COUNT = 2000;
const paragraphs = newsParagraphs(COUNT);

describe(
  'queue path with two workers',
  { skip: paragraphs ? false : 'corpora not found' },
  () => {
    const prefix = uniquePrefix('queue');
    const dir = tempDir('queue');
    const csv = join(dir, 'news.csv');
    const env = { UIE_PREFIX: prefix, UIE_OUTPUT_DIR: join(dir, 'results') };
    const run = 'news-1';

    before(() => {
      const rows = paragraphs!.map((p, i) => `doc-${i + 1},${csvField(p)}`);
      writeFileSync(csv, ['id,text', ...rows].join('\n') + '\n');
    });

    after(() => deletePrefix(prefix));

    it('enqueues every paragraph once', async () => {
      const first = await runCli(['enqueue', csv, '--run', run], env);
      assert.equal(first.code, 0, first.stderr);
      assert.match(first.stderr, new RegExp(`${COUNT} documents`));

      const again = await runCli(['enqueue', csv, '--run', run], env);
      assert.equal(again.code, 0, again.stderr);
      assert.match(again.stderr, /: 0 documents, 0 chunks in 0 jobs queued/);
      assert.match(again.stderr, new RegExp(`${COUNT} already queued`));
    });

    it('exports every document once after two workers drain the queue', async () => {
      const workers = await Promise.all([
        runCli(['work', '--threads', '1', '--exit-when-drained'], env),
        runCli(['work', '--threads', '1', '--exit-when-drained'], env),
      ]);
      for (const w of workers) assert.equal(w.code, 0, w.stderr);

      const out = join(dir, 'out.jsonl');
      const exported = await runCli(['export', '--run', run, '-o', out], env);
      assert.equal(exported.code, 0, exported.stderr);
      const lines = readJsonl<Line>(out);
      assert.equal(lines.length, COUNT);
      assert.deepEqual(
        lines.map((l) => l.id),
        paragraphs!.map((_, i) => `doc-${i + 1}`),
      );
      assert.equal(lines.filter((l) => l.error).length, 0);
      lines.forEach((line, i) => {
        const chars = [...paragraphs![i]];
        for (const e of line.entities) {
          assert.equal(
            chars.slice(e.start, e.end).join(''),
            e.text,
            `${line.id} ${e.label}`,
          );
        }
      });
    });

    it('matches extract on the same file', async () => {
      const out = join(dir, 'extract.jsonl');
      const result = await runCli(
        ['extract', csv, '-o', out, '--threads', '2'],
        env,
      );
      assert.equal(result.code, 0, result.stderr);
      const queued = readJsonl<Line>(join(dir, 'out.jsonl'));
      const direct = readJsonl<Line>(out);
      assert.deepEqual(queued, direct);
    });
  },
);

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';

import { LexiconServer } from '../src/engine/lexicon-channel.js';
import { SpanExtractor } from '../src/engine/span-extractor.js';
import { ModelError } from '../src/errors/errors.js';
import type { ExtractorModel } from '../src/model/load-model.js';
import type { ModelManifest } from '../src/model/model-folder.js';
import type { SharedTextBatch } from '../src/model/shared-text-model.js';
import type { PackedBatch } from '../src/model/span-model.js';
import { Lexicon, loadLexicon } from '../src/tokenizer/lexicon.js';
import { Tokenizer } from '../src/tokenizer/tokenizer.js';
import { ROOT, tempDir } from './helpers.js';

// Bit of (class, role): classes person 0, place 1, org 2, word 3; roles
// first 0, inner 1, last 2.
const bit = (cls: number, role: number) => 1 << (cls * 3 + role);
const [PERSON, PLACE, ORG] = [0, 1, 2];
const [FIRST, INNER, LAST] = [0, 1, 2];

const LINES = [
  '李白\tperson',
  '北京\tplace',
  '北京市\tplace',
  '中华人民共和国\tplace',
  'ab公司\torg',
  '李\tperson',
  '长江\tplace,word',
].join('\n');

describe('Lexicon', () => {
  const lexicon = Lexicon.parse(LINES, 'test.lexicon');

  it('marks first, inner and last characters', () => {
    assert.deepEqual(
      [...lexicon.bits('李白在北京市')],
      [
        bit(PERSON, FIRST),
        bit(PERSON, LAST),
        0,
        bit(PLACE, FIRST),
        // 京 ends 北京 and is inside 北京市.
        bit(PLACE, LAST) | bit(PLACE, INNER),
        bit(PLACE, LAST),
      ],
    );
  });

  it('ignores a byte order mark', () => {
    const marked = Lexicon.parse('\ufeff北京\tplace\n', 'bom.lexicon');
    assert.deepEqual(
      [...marked.bits('北京')],
      [bit(PLACE, FIRST), bit(PLACE, LAST)],
    );
  });

  it('follows words through non-word prefixes', () => {
    const inner = bit(PLACE, INNER);
    assert.deepEqual(
      [...lexicon.bits('中华人民共和国成立')],
      [
        bit(PLACE, FIRST),
        inner,
        inner,
        inner,
        inner,
        inner,
        bit(PLACE, LAST),
        0,
        0,
      ],
    );
  });

  it('folds traditional and full-width text', () => {
    assert.deepEqual(
      [...lexicon.bits('中華人民共和國')],
      [...lexicon.bits('中华人民共和国')],
    );
    assert.deepEqual(
      [...lexicon.bits('ＡＢ公司')],
      [bit(ORG, FIRST), bit(ORG, INNER), bit(ORG, INNER), bit(ORG, LAST)],
    );
  });

  it('sets one bit per class', () => {
    const word = 3;
    assert.deepEqual(
      [...lexicon.bits('长江')],
      [
        bit(PLACE, FIRST) | bit(word, FIRST),
        bit(PLACE, LAST) | bit(word, LAST),
      ],
    );
  });

  it('counts code points, skips one-character words', () => {
    const bits = lexicon.bits('😀李白𠀀李');
    assert.deepEqual(
      [...bits],
      [0, bit(PERSON, FIRST), bit(PERSON, LAST), 0, 0],
    );
  });

  it('counts words, not prefixes', () => {
    // 李 is too short to match, so it is left out.
    assert.equal(lexicon.size, 6);
  });

  it('names file and line of bad entries', () => {
    assert.throws(
      () => Lexicon.parse('北京\tplace\n上海 place\n', 'words.txt'),
      (err: unknown) =>
        err instanceof ModelError &&
        err.message.startsWith('words.txt:2: expected word<TAB>classes'),
    );
    assert.throws(
      () => Lexicon.parse('北京\tcity\n', 'words.txt'),
      (err: unknown) =>
        err instanceof ModelError &&
        err.message ===
          'words.txt:1: unknown class "city"; known: person, place, org, word',
    );
  });

  it('loads the lexicon a folder names', () => {
    const dir = tempDir('lexicon');
    try {
      const path = join(dir, 'lexicon.txt');
      writeFileSync(path, LINES + '\r\n');
      const loaded = loadLexicon({ lexiconPath: path });
      assert.deepEqual([...loaded!.bits('北京')], [...lexicon.bits('北京')]);
      assert.equal(loadLexicon({}), undefined);
      assert.throws(
        () => loadLexicon({ lexiconPath: join(dir, 'missing.txt') }),
        (err: unknown) =>
          err instanceof ModelError &&
          err.message.startsWith(
            `lexicon unreadable: ${join(dir, 'missing.txt')}`,
          ),
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('LexiconServer', () => {
  const channelModule = pathToFileURL(
    join(ROOT, 'dist/src/engine/lexicon-channel.js'),
  ).href;

  /** Starts a thread that requests the lexicon and replies with its bits for text. */
  function askFromThread(name: string, text: string): Promise<number[]> {
    const code = `
      const { parentPort, workerData } = require('node:worker_threads');
      import(workerData.module)
        .then((m) => m.requestLexicon(workerData.name))
        .then((lexicon) => parentPort.postMessage([...lexicon.bits(workerData.text)]))
        .catch((err) => parentPort.postMessage({ error: err.name + ': ' + err.message }));
    `;
    const worker = new Worker(code, {
      eval: true,
      workerData: { module: channelModule, name, text },
    });
    return new Promise((resolve, reject) => {
      worker.once('message', (reply: number[] | { error: string }) => {
        void worker.terminate();
        if (Array.isArray(reply)) resolve(reply);
        else reject(new Error(reply.error));
      });
      worker.once('error', reject);
    });
  }

  it('serves threads that ask early or late', async () => {
    const dir = tempDir('lexicon-server');
    const server = new LexiconServer();
    try {
      const path = join(dir, 'lexicon.txt');
      writeFileSync(path, LINES);
      const early = askFromThread(server.name, '李白在北京市');
      // Let the early thread ask before the lexicon exists.
      await new Promise((resolve) => setTimeout(resolve, 200));
      const built = await server.provide(path);
      const late = askFromThread(server.name, '长江');
      assert.deepEqual(await early, [...built.bits('李白在北京市')]);
      assert.deepEqual(await late, [...built.bits('长江')]);
      assert.notDeepEqual(await late, [0, 0]);
    } finally {
      server.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('passes build errors to threads', async () => {
    const dir = tempDir('lexicon-server');
    const server = new LexiconServer();
    try {
      const path = join(dir, 'lexicon.txt');
      writeFileSync(path, '北京\tcity\n');
      const waiting = askFromThread(server.name, '北京');
      await assert.rejects(server.provide(path), ModelError);
      await assert.rejects(waiting, {
        message: `ModelError: ${path}:1: unknown class "city"; known: person, place, org, word`,
      });
    } finally {
      server.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('Lexicon against the training code', () => {
  // Written by test/fixtures/make_lexicon_parity.py with training/lexicon.py.
  const fixture = JSON.parse(
    readFileSync(join(ROOT, 'test/fixtures/lexicon-parity.json'), 'utf8'),
  ) as { lexicon: string; cases: { text: string; bits: number[] }[] };
  const lexicon = Lexicon.parse(fixture.lexicon, 'lexicon-parity.json');

  for (const { text, bits } of fixture.cases) {
    it(`gives the training bits for ${JSON.stringify(text)}`, () => {
      assert.deepEqual([...lexicon.bits(text)], bits);
    });
  }
});

describe('SpanExtractor with a lexicon model', () => {
  const tokenizer = new Tokenizer(['[PAD]', '[UNK]', '[CLS]', '[SEP]']);
  const manifest = {
    name: 'lex',
    version: '1.0.0',
    labels: ['人物', '地点'],
    max_seq_len: 64,
  } as ModelManifest;
  // Only what the constructor reads: the graph kind and its inputs.
  const model = { graph: 'packed', needsLexicon: true } as ExtractorModel;

  it('rejects a lexicon graph without lexicon', () => {
    assert.throws(() => new SpanExtractor(model, tokenizer, manifest, []), {
      name: 'ModelError',
      message:
        'model lex 1.0.0 takes dictionary-match bits (lexicon_bits), ' +
        'but its model.json names no "lexicon" file',
    });
  });

  it('packs bits at packed text positions', async () => {
    const lexicon = Lexicon.parse(LINES, 'test.lexicon');
    const batches: PackedBatch[] = [];
    const packed = {
      graph: 'packed',
      needsLexicon: true,
      run: async (batch: PackedBatch) => {
        batches.push(batch);
        const zeros = new Float32Array(batch.rows * batch.seqLen);
        return { start: zeros, end: zeros };
      },
    } as unknown as ExtractorModel;
    const extractor = new SpanExtractor(packed, tokenizer, manifest, [], {
      lexicon,
    });
    await extractor.extract(['李白在北京市'], ['人物']);
    assert.equal(batches.length, 1);
    // [CLS] 人 物 [SEP] 李 白 在 北 京 市 [SEP]: no bits outside the text.
    assert.deepEqual([...batches[0].lexiconBits!].map(Number), [
      0,
      0,
      0,
      0,
      ...lexicon.bits('李白在北京市'),
      0,
    ]);
  });

  it('packs bits beside shared-text ids', async () => {
    const lexicon = Lexicon.parse(LINES, 'test.lexicon');
    const batches: SharedTextBatch[] = [];
    const shared = {
      graph: 'shared',
      needsLexicon: true,
      run: async (batch: SharedTextBatch) => {
        batches.push(batch);
        const zeros = new Float32Array(
          batch.texts * batch.labels * batch.seqLen,
        );
        return { start: zeros, end: zeros };
      },
    } as unknown as ExtractorModel;
    const extractor = new SpanExtractor(shared, tokenizer, manifest, [], {
      lexicon,
    });
    await extractor.extract(['北京', '李白在北京市'], ['人物', '地点']);
    assert.equal(batches.length, 1);
    // Rows sorted by length and padded to the longest text and its [SEP].
    assert.deepEqual([...batches[0].lexiconBits!].map(Number), [
      ...lexicon.bits('北京'),
      0,
      0,
      0,
      0,
      0,
      ...lexicon.bits('李白在北京市'),
      0,
    ]);
  });
});

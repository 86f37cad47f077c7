import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { parse } from 'csv-parse/sync';

import { SpanExtractor } from '../src/engine/span-extractor.js';
import type { TextOutcome } from '../src/engine/text-outcome.js';
import {
  loadExtractorModel,
  type ExtractorModel,
} from '../src/model/load-model.js';
import {
  readModelFolder,
  type ModelFolder,
  type ModelManifest,
} from '../src/model/model-folder.js';
import { loadLexicon } from '../src/tokenizer/lexicon.js';
import { Tokenizer } from '../src/tokenizer/tokenizer.js';
import { newsParagraphs, ROOT, tempDir } from './helpers.js';

// A model folder whose model.json names a shared-text graph. The shipped
// models/tiny has one only once it is exported with training/export.py.
const MODEL_DIR = process.env.UIE_SHARED_MODEL_DIR ?? join(ROOT, 'models/tiny');
const DEFAULT_SCHEMA = ['人物', '地点', '机构', '时间'];
const NEWS_PARAGRAPHS = 50;

function skipReason(): string | false {
  const folder = readModelFolder(MODEL_DIR, false);
  if (folder.sharedTextPath !== undefined) return false;
  return (
    `${MODEL_DIR}/model.json has no "shared_text" graph; export the folder ` +
    'with training/export.py, or set UIE_SHARED_MODEL_DIR to one that has it'
  );
}

/**
 * Copies the folder without its shared-text graph, as a PaddleNLP UIE export
 * would look, so that the packed graph is chosen from model.json alone.
 */
function copyWithoutSharedText(folder: ModelFolder, dir: string): void {
  const { shared_text: shared, ...manifest } = folder.manifest;
  const digests = { ...manifest.sha256 };
  delete digests[shared!];
  const files = [manifest.onnx, manifest.vocab];
  if (manifest.lexicon !== undefined) files.push(manifest.lexicon);
  for (const file of files) {
    copyFileSync(join(folder.dir, file), join(dir, file));
  }
  const packed: ModelManifest = { ...manifest, sha256: digests };
  writeFileSync(join(dir, 'model.json'), JSON.stringify(packed));
}

function exampleTexts(): string[] {
  const csv = readFileSync(join(ROOT, 'examples/corpus.csv'), 'utf8');
  const rows = parse(csv, { columns: true }) as { text: string }[];
  return rows.map((r) => r.text);
}

describe('shared-text graph', { skip: skipReason() }, () => {
  let copy = '';
  let packedModel: ExtractorModel;
  let sharedModel: ExtractorModel;
  let packed: SpanExtractor;
  let shared: SpanExtractor;
  let smallBatches: SpanExtractor;
  let manifest: ModelManifest;

  before(async () => {
    const folder = readModelFolder(MODEL_DIR);
    copy = tempDir('shared-text');
    copyWithoutSharedText(folder, copy);
    const packedFolder = readModelFolder(copy);
    manifest = folder.manifest;

    packedModel = await loadExtractorModel(packedFolder);
    sharedModel = await loadExtractorModel(folder);
    const tokenizer = Tokenizer.fromFile(folder.vocabPath);
    const lexicon = loadLexicon(folder);
    // No rule plugins, so that only the model's spans are compared.
    const extractor = (model: ExtractorModel, batchTokens?: number) =>
      new SpanExtractor(model, tokenizer, manifest, [], {
        batchTokens,
        lexicon,
      });
    packed = extractor(packedModel);
    shared = extractor(sharedModel);
    // One text per run with 17 labels, so offsets are checked across runs.
    smallBatches = extractor(sharedModel, 64);
  });

  after(async () => {
    await packedModel?.release();
    await sharedModel?.release();
    if (copy) rmSync(copy, { recursive: true, force: true });
  });

  /** Runs both graphs and checks that they find the same entities. */
  async function assertSameEntities(
    texts: string[],
    schema: string[],
  ): Promise<TextOutcome[]> {
    const expected = await packed.extract(texts, schema);
    const actual = await shared.extract(texts, schema);
    assert.ok(
      expected.some((list) => Array.isArray(list) && list.length > 0),
      'the packed graph found no entity, so the comparison proves nothing',
    );
    texts.forEach((text, i) => {
      assert.deepEqual(actual[i], expected[i], `text ${i}: ${text}`);
    });
    return actual;
  }

  it('loads the graph model.json names', () => {
    assert.equal(packedModel.graph, 'packed');
    assert.equal(sharedModel.graph, 'shared');
  });

  it('matches packed on the examples', async () => {
    await assertSameEntities(exampleTexts(), DEFAULT_SCHEMA);
  });

  it('matches packed with every label', async () => {
    await assertSameEntities(exampleTexts(), manifest.labels);
  });

  it(
    'matches packed on news paragraphs',
    { skip: newsParagraphs(1) ? false : "People's Daily corpus not found" },
    async () => {
      const limit = shared.maxTextLength(DEFAULT_SCHEMA);
      const texts = newsParagraphs(200)!
        .filter((t) => [...t].length <= limit)
        .slice(0, NEWS_PARAGRAPHS);
      assert.equal(texts.length, NEWS_PARAGRAPHS);
      await assertSameEntities(texts, DEFAULT_SCHEMA);
    },
  );

  it('gives the same spans in small batches', async () => {
    const texts = exampleTexts();
    const expected = await shared.extract(texts, manifest.labels);
    const actual = await smallBatches.extract(texts, manifest.labels);
    assert.deepEqual(actual, expected);
  });

  it('skips empty texts', async () => {
    const texts = ['', exampleTexts()[0], ''];
    const expected = await packed.extract(texts, DEFAULT_SCHEMA);
    const actual = await shared.extract(texts, DEFAULT_SCHEMA);
    assert.deepEqual(actual[0], []);
    assert.deepEqual(actual[2], []);
    assert.deepEqual(actual, expected);
  });
});

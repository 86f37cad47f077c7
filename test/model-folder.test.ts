import { afterEach, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import {
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';

import { ModelError } from '../src/errors/errors.js';
import { readModelFolder } from '../src/model/model-folder.js';

// Any bytes will do, because readModelFolder only hashes the graph.
const ONNX_BYTES = Buffer.from([0x08, 0x07, 0x12, 0x04, 0x74, 0x65, 0x73]);
const VOCAB = '[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\n \n北\n京\n';

function sha256(bytes: Buffer | string): string {
  return createHash('sha256').update(bytes).digest('hex');
}

function manifest(): Record<string, unknown> {
  return {
    name: 'tiny',
    version: '0.0.1',
    onnx: 'model.onnx',
    vocab: 'vocab.txt',
    labels: ['人物', '地点', '机构', '时间'],
    max_seq_len: 128,
    sha256: {
      'model.onnx': sha256(ONNX_BYTES),
      'vocab.txt': sha256(VOCAB),
    },
  };
}

let dir = '';
let manifestPath = '';

function writeManifest(value: unknown): void {
  writeFileSync(manifestPath, JSON.stringify(value));
}

/** Asserts that readModelFolder throws a ModelError whose message matches. */
function assertModelError(pattern: RegExp): void {
  assert.throws(
    () => readModelFolder(dir),
    (err: unknown) => {
      assert.ok(err instanceof ModelError, String(err));
      assert.match(err.message, pattern);
      return true;
    },
  );
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'uie-model-'));
  manifestPath = join(dir, 'model.json');
  writeFileSync(join(dir, 'model.onnx'), ONNX_BYTES);
  writeFileSync(join(dir, 'vocab.txt'), VOCAB);
  writeManifest(manifest());
});

afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe('readModelFolder', () => {
  it('reads a valid folder', () => {
    const folder = readModelFolder(dir);
    assert.equal(folder.dir, dir);
    assert.deepEqual(folder.manifest, manifest());
    assert.equal(folder.onnxPath, join(dir, 'model.onnx'));
    assert.equal(folder.vocabPath, join(dir, 'vocab.txt'));
    assert.equal(folder.sharedTextPath, undefined);
  });

  it('resolves a relative dir', () => {
    assert.equal(readModelFolder(relative(process.cwd(), dir)).dir, dir);
  });

  it('accepts upper-case digests', () => {
    const m = manifest();
    m.sha256 = {
      'model.onnx': sha256(ONNX_BYTES).toUpperCase(),
      'vocab.txt': sha256(VOCAB),
    };
    writeManifest(m);
    assert.equal(readModelFolder(dir).manifest.name, 'tiny');
  });

  it('reads a model.json with a BOM', () => {
    writeFileSync(manifestPath, '\uFEFF' + JSON.stringify(manifest()));
    assert.equal(readModelFolder(dir).manifest.name, 'tiny');
  });

  it('accepts max_seq_len 8192', () => {
    writeManifest({ ...manifest(), max_seq_len: 8192 });
    assert.equal(readModelFolder(dir).manifest.max_seq_len, 8192);
  });

  it('skips digests without verify', () => {
    writeFileSync(join(dir, 'model.onnx'), 'other bytes');
    assert.equal(readModelFolder(dir, false).manifest.name, 'tiny');
  });
});

describe('when model.json is wrong', () => {
  it('rejects a missing model.json', () => {
    unlinkSync(manifestPath);
    assertModelError(
      new RegExp(`^model metadata not found: ${escapeRegExp(manifestPath)};`),
    );
  });

  it('keeps the cause', () => {
    unlinkSync(manifestPath);
    assert.throws(
      () => readModelFolder(dir),
      (err: unknown) => {
        assert.ok(err instanceof ModelError);
        assert.equal((err.cause as NodeJS.ErrnoException).code, 'ENOENT');
        return true;
      },
    );
  });

  it('rejects invalid JSON', () => {
    writeFileSync(manifestPath, '{"name": "tiny",');
    const path = escapeRegExp(manifestPath);
    assertModelError(new RegExp(`^invalid JSON in ${path}: `));
  });

  it('rejects null', () => {
    writeFileSync(manifestPath, 'null');
    assertModelError(new RegExp(escapeRegExp(manifestPath)));
  });

  for (const key of ['name', 'version', 'onnx', 'vocab']) {
    it(`rejects a missing ${key}`, () => {
      const m = manifest();
      delete m[key];
      writeManifest(m);
      assert.throws(() => readModelFolder(dir), {
        name: 'ModelError',
        message: `${manifestPath}: field "${key}" must be a non-empty string`,
      });
    });
  }

  it('rejects labels of numbers', () => {
    writeManifest({ ...manifest(), labels: [1, 2] });
    assert.throws(() => readModelFolder(dir), {
      name: 'ModelError',
      message: `${manifestPath}: field "labels" must be an array of strings`,
    });
  });

  it('rejects a small max_seq_len', () => {
    writeManifest({ ...manifest(), max_seq_len: 8 });
    assert.throws(() => readModelFolder(dir), {
      name: 'ModelError',
      message: `${manifestPath}: field "max_seq_len" must be an integer from 16 to 8192, got 8`,
    });
  });

  it('rejects a max_seq_len above 8192', () => {
    writeManifest({ ...manifest(), max_seq_len: 51200 });
    assert.throws(() => readModelFolder(dir), {
      name: 'ModelError',
      message: `${manifestPath}: field "max_seq_len" must be an integer from 16 to 8192, got 51200`,
    });
  });

  it('quotes a max_seq_len string', () => {
    writeManifest({ ...manifest(), max_seq_len: '256' });
    assert.throws(() => readModelFolder(dir), {
      name: 'ModelError',
      message: `${manifestPath}: field "max_seq_len" must be an integer from 16 to 8192, got "256"`,
    });
  });

  for (const key of ['onnx', 'vocab', 'shared_text', 'lexicon']) {
    it(`rejects an absolute path in ${key}`, () => {
      // The file exists at that path, but not inside the folder.
      const file = join(dir, 'inference.onnx');
      writeFileSync(file, ONNX_BYTES);
      const m = manifest();
      m[key] = file;
      (m.sha256 as Record<string, string>)[file] = sha256(ONNX_BYTES);
      writeManifest(m);
      assert.throws(() => readModelFolder(dir), {
        name: 'ModelError',
        message:
          `${manifestPath}: field "${key}" must name a file inside the ` +
          'model folder, relative to it, such as "inference.onnx"; got the ' +
          `absolute path ${JSON.stringify(file)}`,
      });
    });
  }

  it('rejects a path out of the folder', () => {
    // The file exists beside the folder, so only the check stops it.
    const name = `${relative(tmpdir(), dir)}-inference.onnx`;
    const outside = join(dirname(dir), name);
    writeFileSync(outside, ONNX_BYTES);
    const onnx = `../${name}`;
    const m = manifest();
    m.onnx = onnx;
    (m.sha256 as Record<string, string>)[onnx] = sha256(ONNX_BYTES);
    writeManifest(m);
    try {
      assert.throws(() => readModelFolder(dir), {
        name: 'ModelError',
        message:
          `${manifestPath}: field "onnx" must name a file inside the model ` +
          `folder, relative to it, such as "${name}"; got ` +
          `"../${name}", which leaves the folder`,
      });
    } finally {
      rmSync(outside, { force: true });
    }
  });

  it('accepts a subfolder path in onnx', () => {
    mkdirSync(join(dir, 'onnx'));
    writeFileSync(join(dir, 'onnx', 'inference.onnx'), ONNX_BYTES);
    const m = manifest();
    m.onnx = 'onnx/inference.onnx';
    (m.sha256 as Record<string, string>)['onnx/inference.onnx'] =
      sha256(ONNX_BYTES);
    writeManifest(m);
    assert.equal(
      readModelFolder(dir).onnxPath,
      join(dir, 'onnx', 'inference.onnx'),
    );
  });

  it('rejects a Windows path in onnx', () => {
    const onnx = 'C:\\models\\uie\\inference.onnx';
    writeManifest({ ...manifest(), onnx });
    assert.throws(() => readModelFolder(dir), {
      name: 'ModelError',
      message:
        `${manifestPath}: field "onnx" must name a file inside the model ` +
        'folder, relative to it, such as "inference.onnx"; got the ' +
        `absolute path ${JSON.stringify(onnx)}`,
    });
  });

  it('rejects a missing sha256', () => {
    const m = manifest();
    delete m.sha256;
    writeManifest(m);
    assert.throws(() => readModelFolder(dir), {
      name: 'ModelError',
      message: `${manifestPath}: field "sha256" must map file names to hex digests`,
    });
  });

  it('rejects a missing digest', () => {
    const digests = { 'model.onnx': sha256(ONNX_BYTES) };
    writeManifest({ ...manifest(), sha256: digests });
    assert.throws(() => readModelFolder(dir), {
      name: 'ModelError',
      message: `${manifestPath}: field "sha256" has no digest for vocab.txt`,
    });
  });
});

describe('when model.json names a shared-text graph', () => {
  const SHARED_BYTES = Buffer.from([0x08, 0x07, 0x12, 0x04, 0x73, 0x68]);
  let sharedPath = '';

  function withShared(): Record<string, unknown> {
    const m = manifest();
    m.shared_text = 'model.shared.onnx';
    (m.sha256 as Record<string, string>)['model.shared.onnx'] =
      sha256(SHARED_BYTES);
    return m;
  }

  beforeEach(() => {
    sharedPath = join(dir, 'model.shared.onnx');
    writeFileSync(sharedPath, SHARED_BYTES);
    writeManifest(withShared());
  });

  it('returns its path', () => {
    const folder = readModelFolder(dir);
    assert.equal(folder.sharedTextPath, sharedPath);
    assert.equal(folder.onnxPath, join(dir, 'model.onnx'));
  });

  it('rejects a changed graph', () => {
    writeFileSync(sharedPath, Buffer.concat([SHARED_BYTES, SHARED_BYTES]));
    assertModelError(
      new RegExp(
        `^model file is damaged or was replaced: ${escapeRegExp(sharedPath)} `,
      ),
    );
  });

  it('rejects a missing graph', () => {
    unlinkSync(sharedPath);
    assert.throws(() => readModelFolder(dir), {
      name: 'ModelError',
      message: `model file not found: ${sharedPath}`,
    });
  });

  it('skips its digest without verify', () => {
    unlinkSync(sharedPath);
    assert.equal(readModelFolder(dir, false).sharedTextPath, sharedPath);
  });

  it('rejects a missing digest', () => {
    const m = withShared();
    delete (m.sha256 as Record<string, string>)['model.shared.onnx'];
    writeManifest(m);
    assert.throws(() => readModelFolder(dir), {
      name: 'ModelError',
      message: `${manifestPath}: field "sha256" has no digest for model.shared.onnx`,
    });
  });

  for (const value of ['', 3]) {
    it(`rejects shared_text ${JSON.stringify(value)}`, () => {
      writeManifest({ ...withShared(), shared_text: value });
      assert.throws(() => readModelFolder(dir), {
        name: 'ModelError',
        message:
          `${manifestPath}: field "shared_text" must be a non-empty string ` +
          `when present, got ${JSON.stringify(value)}`,
      });
    });
  }
});

describe('when model.json names a lexicon', () => {
  const LEXICON = '北京\tplace\n';
  let lexiconPath = '';

  function withLexicon(): Record<string, unknown> {
    const m = manifest();
    m.lexicon = 'lexicon.txt';
    (m.sha256 as Record<string, string>)['lexicon.txt'] = sha256(LEXICON);
    return m;
  }

  beforeEach(() => {
    lexiconPath = join(dir, 'lexicon.txt');
    writeFileSync(lexiconPath, LEXICON);
    writeManifest(withLexicon());
  });

  it('returns its path', () => {
    assert.equal(readModelFolder(dir).lexiconPath, lexiconPath);
  });

  it('rejects a changed lexicon', () => {
    writeFileSync(lexiconPath, LEXICON + '上海\tplace\n');
    assertModelError(
      new RegExp(
        `^model file is damaged or was replaced: ${escapeRegExp(lexiconPath)} `,
      ),
    );
  });

  it('rejects a missing digest', () => {
    const m = withLexicon();
    delete (m.sha256 as Record<string, string>)['lexicon.txt'];
    writeManifest(m);
    assert.throws(() => readModelFolder(dir), {
      name: 'ModelError',
      message: `${manifestPath}: field "sha256" has no digest for lexicon.txt`,
    });
  });

  it('rejects a lexicon field that is not a file name', () => {
    writeManifest({ ...withLexicon(), lexicon: 7 });
    assert.throws(() => readModelFolder(dir), {
      name: 'ModelError',
      message: `${manifestPath}: field "lexicon" must be a non-empty string when present, got 7`,
    });
  });

  it('has no lexicon path without the field', () => {
    writeManifest(manifest());
    assert.equal(readModelFolder(dir).lexiconPath, undefined);
  });
});

describe('when a model file is wrong', () => {
  it('rejects a changed onnx byte', () => {
    const onnxPath = join(dir, 'model.onnx');
    const bytes = readFileSync(onnxPath);
    bytes[3] ^= 0x01;
    writeFileSync(onnxPath, bytes);
    assert.throws(() => readModelFolder(dir), {
      name: 'ModelError',
      message:
        `model file is damaged or was replaced: ${onnxPath} has SHA-256 ` +
        `${sha256(bytes)}, model.json expects ${sha256(ONNX_BYTES)}`,
    });
  });

  it('rejects a changed vocab', () => {
    writeFileSync(join(dir, 'vocab.txt'), VOCAB + '上\n');
    assertModelError(/^model file is damaged or was replaced: .*vocab\.txt /);
  });

  it('rejects a missing vocab', () => {
    const vocabPath = join(dir, 'vocab.txt');
    unlinkSync(vocabPath);
    assert.throws(() => readModelFolder(dir), {
      name: 'ModelError',
      message: `model file not found: ${vocabPath}`,
    });
  });

  it('rejects a missing onnx', () => {
    const onnxPath = join(dir, 'model.onnx');
    unlinkSync(onnxPath);
    assert.throws(() => readModelFolder(dir), {
      name: 'ModelError',
      message: `model file not found: ${onnxPath}`,
    });
  });

  it('rejects a folder in place of onnx', () => {
    const onnxPath = join(dir, 'model.onnx');
    unlinkSync(onnxPath);
    mkdirSync(onnxPath);
    assertModelError(new RegExp(escapeRegExp(onnxPath)));
  });
});

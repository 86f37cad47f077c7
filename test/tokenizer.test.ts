import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

import {
  codePointIndex,
  countCodePoints,
  foldCodePoint,
  Tokenizer,
} from '../src/tokenizer/tokenizer.js';
import { simplifyText } from '../src/tokenizer/traditional.js';
import { tempDir } from './helpers.js';

const TOKENS = [
  '[PAD]',
  '[UNK]',
  '[CLS]',
  '[SEP]',
  ' ',
  'a',
  'b',
  '1',
  '北',
  '京',
  '😀',
  '𠀀',
];

function idOf(token: string): number {
  return TOKENS.indexOf(token);
}

describe('foldCodePoint', () => {
  const cases: [string, string, string][] = [
    ['full-width digit', '１', '1'],
    ['full-width comma', '，', ','],
    ['full-width lower a', 'ａ', 'a'],
    ['ideographic space', '\u3000', ' '],
    ['tab', '\t', ' '],
    ['newline', '\n', ' '],
    ['no-break space', '\u00a0', ' '],
    ['ASCII upper', 'A', 'a'],
    ['Greek upper', 'Σ', 'σ'],
    ['CJK', '北', '北'],
    ['emoji', '😀', '😀'],
    ['Extension B', '𠀀', '𠀀'],
  ];
  for (const [name, input, expected] of cases) {
    it(`folds ${name}`, () => {
      const folded = foldCodePoint(input.codePointAt(0)!);
      assert.equal(String.fromCodePoint(folded), expected);
    });
  }

  it('folds full-width upper A to a', () => {
    // Training folds width first and then case, so Ａ becomes a, and the
    // vocabulary contains no upper-case ASCII letters.
    assert.equal(foldCodePoint(0xff21), 0x61);
  });

  it('keeps İ unfolded', () => {
    // İ lowers to two code points, and folding must keep offsets.
    assert.equal(foldCodePoint(0x130), 0x130);
  });

  it('maps each BMP character to one', () => {
    for (let cp = 0; cp <= 0xffff; cp++) {
      if (cp >= 0xd800 && cp <= 0xdfff) continue;
      const folded = foldCodePoint(cp);
      assert.equal([...String.fromCodePoint(folded)].length, 1, `U+${cp}`);
    }
  });
});

describe('Tokenizer', () => {
  it('reads special token ids', () => {
    const tokenizer = new Tokenizer(TOKENS);
    assert.equal(tokenizer.pad, 0);
    assert.equal(tokenizer.unk, 1);
    assert.equal(tokenizer.cls, 2);
    assert.equal(tokenizer.sep, 3);
  });

  it('rejects missing special tokens', () => {
    const tokens = ['[CLS]', '[SEP]', 'a'];
    assert.throws(() => new Tokenizer(tokens), {
      name: 'ModelError',
      message:
        'vocabulary lacks special tokens: [UNK], [PAD]; it needs [CLS], ' +
        '[SEP], [UNK], [PAD], each on a line of its own',
    });
  });

  it('keeps the first id of repeats', () => {
    const tokenizer = new Tokenizer([...TOKENS, 'a']);
    assert.deepEqual([...tokenizer.encode('a')], [idOf('a')]);
  });
});

describe('Tokenizer.fromFile', () => {
  const dir = tempDir('vocab');

  it('reads a vocab.txt with a BOM', () => {
    const path = join(dir, 'bom.txt');
    writeFileSync(path, '\uFEFF' + TOKENS.join('\r\n') + '\r\n');
    const tokenizer = Tokenizer.fromFile(path);
    assert.equal(tokenizer.pad, 0);
    assert.equal(tokenizer.size, TOKENS.length);
    assert.deepEqual([...tokenizer.encode('北')], [idOf('北')]);
  });

  it('names the file that lacks special tokens', () => {
    const path = join(dir, 'no-unk.txt');
    writeFileSync(path, '[PAD]\n[CLS]\n[SEP]\n北\n');
    assert.throws(() => Tokenizer.fromFile(path), {
      name: 'ModelError',
      message:
        `vocabulary ${path} lacks special tokens: [UNK]; it needs [CLS], ` +
        '[SEP], [UNK], [PAD], each on a line of its own',
    });
  });

  it('names a file it cannot read', () => {
    const path = join(dir, 'missing.txt');
    assert.throws(
      () => Tokenizer.fromFile(path),
      (err: Error) => {
        assert.equal(err.name, 'ModelError');
        assert.ok(
          err.message.startsWith(`cannot read vocabulary ${path}: ENOENT`),
          err.message,
        );
        return true;
      },
    );
  });
});

describe('Tokenizer.encode', () => {
  const tokenizer = new Tokenizer(TOKENS);

  it('gives one id per code point', () => {
    assert.deepEqual(
      [...tokenizer.encode('北京ab')],
      [idOf('北'), idOf('京'), idOf('a'), idOf('b')],
    );
  });

  it('folds before lookup', () => {
    assert.deepEqual(
      [...tokenizer.encode('ａ１\u3000B')],
      [idOf('a'), idOf('1'), idOf(' '), idOf('b')],
    );
  });

  it('maps unknown characters to [UNK] in place', () => {
    assert.deepEqual(
      [...tokenizer.encode('北z京')],
      [idOf('北'), tokenizer.unk, idOf('京')],
    );
  });

  it('keeps positions after an emoji', () => {
    const ids = tokenizer.encode('😀北z京');
    assert.equal(ids.length, 4);
    assert.deepEqual(
      [...ids],
      [idOf('😀'), idOf('北'), tokenizer.unk, idOf('京')],
    );
  });

  it('keeps positions after Extension B', () => {
    const ids = tokenizer.encode('𠀀𠀁北');
    assert.deepEqual([...ids], [idOf('𠀀'), tokenizer.unk, idOf('北')]);
  });

  it('encodes empty text', () => {
    assert.equal(tokenizer.encode('').length, 0);
  });
});

describe('countCodePoints', () => {
  const cases: [string, string, number][] = [
    ['empty', '', 0],
    ['ASCII', 'abc', 3],
    ['CJK', '北京', 2],
    ['emoji', 'a😀b', 3],
    ['Extension B', '𠀀𠀁', 2],
    ['lone high surrogate', '\ud83d', 1],
    ['lone low surrogate', 'a\ude00', 2],
    ['reversed pair', '\ude00\ud83d', 2],
  ];
  for (const [name, text, expected] of cases) {
    it(`counts ${name}`, () => {
      assert.equal(countCodePoints(text), expected);
    });
  }

  it('matches the string iterator', () => {
    const text = '😀北\ud83d京𠀀x\ude00';
    assert.equal(countCodePoints(text), [...text].length);
  });
});

describe('codePointIndex', () => {
  const text = '😀北京𠀀大学';
  const index = codePointIndex(text);

  it('counts code points', () => {
    assert.equal(index.length, 6);
  });

  it('slices after an emoji', () => {
    assert.equal(index.slice(1, 3), '北京');
  });

  it('slices a surrogate pair whole', () => {
    assert.equal(index.slice(3, 4), '𠀀');
  });

  it('slices to the end', () => {
    assert.equal(index.slice(4, 6), '大学');
  });

  it('slices empty ranges', () => {
    assert.equal(index.slice(2, 2), '');
  });

  it('matches the code point array', () => {
    const chars = [...text];
    for (let start = 0; start <= chars.length; start++) {
      for (let end = start; end <= chars.length; end++) {
        const expected = chars.slice(start, end).join('');
        assert.equal(index.slice(start, end), expected, `${start}..${end}`);
      }
    }
  });
});

describe('traditional characters', () => {
  const tokenizer = new Tokenizer([
    '[PAD]',
    '[UNK]',
    '[CLS]',
    '[SEP]',
    '们',
    '国',
    '學',
  ]);

  it('map onto simplified ids', () => {
    assert.deepEqual([...tokenizer.encode('們國')], [4, 5]);
  });

  it('keep a traditional id the vocabulary has', () => {
    // 學 simplifies to 学, which this vocabulary lacks.
    assert.deepEqual([...tokenizer.encode('學')], [6]);
  });

  it('keep one id per code point', () => {
    assert.equal(tokenizer.encode('們😀國').length, 3);
  });
});

describe('simplifyText', () => {
  it('keeps every UTF-16 index', () => {
    const text = '𠀀上午9點，春節';
    const simplified = simplifyText(text);

    assert.equal(simplified, '𠀀上午9点，春节');
    assert.equal(simplified.length, text.length);
  });

  it('returns text without traditional characters as it is', () => {
    assert.equal(simplifyText('张三在北京'), '张三在北京');
  });
});

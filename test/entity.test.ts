import { describe, it } from 'node:test';
import assert from 'node:assert/strict';

import {
  compareEntities,
  dedupeEntities,
  type Entity,
} from '../src/engine/entity.js';
import { formatLine, mergeChunks } from '../src/output/document-line.js';

function entity(
  fields: Partial<Entity> & Pick<Entity, 'start' | 'end'>,
): Entity {
  return {
    label: '人物',
    text: 'x'.repeat(fields.end - fields.start),
    score: 0.9,
    source: 'model',
    ...fields,
  };
}

/** Start and end of each entity. */
function spans(entities: Entity[]): number[][] {
  return entities.map((e) => [e.start, e.end]);
}

describe('dedupeEntities', () => {
  it('keeps one of a repeated span', () => {
    const a = entity({ start: 0, end: 2 });
    assert.deepEqual(dedupeEntities([a, { ...a }]), [a]);
  });

  it('keeps the higher model score', () => {
    const low = entity({ start: 0, end: 2, score: 0.6 });
    const high = entity({ start: 0, end: 2, score: 0.8 });
    assert.deepEqual(dedupeEntities([low, high]), [high]);
  });

  it('prefers a rule on the same span', () => {
    const model = entity({ label: '时间', start: 0, end: 5, score: 0.99 });
    const rule = entity({
      label: '时间',
      start: 0,
      end: 5,
      score: 1,
      source: 'time',
      value: '2024-01-02',
    });
    assert.deepEqual(dedupeEntities([model, rule]), [rule]);
    assert.deepEqual(dedupeEntities([rule, model]), [rule]);
  });

  it('prefers a rule over an overlapping span', () => {
    const model = entity({ label: '时间', start: 2, end: 8 });
    const rule = entity({ label: '时间', start: 4, end: 10, source: 'time' });
    assert.deepEqual(dedupeEntities([model, rule]), [rule]);
  });

  it('keeps a model span touching a rule', () => {
    const model = entity({ label: '时间', start: 0, end: 4 });
    const rule = entity({ label: '时间', start: 4, end: 8, source: 'time' });
    assert.deepEqual(dedupeEntities([rule, model]), [model, rule]);
  });

  it('keeps a rule of another label', () => {
    const model = entity({ label: '人物', start: 0, end: 4 });
    const rule = entity({ label: '时间', start: 2, end: 6, source: 'time' });
    assert.deepEqual(dedupeEntities([rule, model]), [model, rule]);
  });

  it('keeps two labels on one span', () => {
    const person = entity({ label: '人物', start: 0, end: 3 });
    const org = entity({ label: '机构', start: 0, end: 3 });
    assert.deepEqual(dedupeEntities([org, person]), [person, org]);
  });

  it('keeps overlapping model spans', () => {
    const a = entity({ start: 0, end: 3 });
    const b = entity({ start: 1, end: 4 });
    assert.deepEqual(dedupeEntities([b, a]), [a, b]);
  });

  it('sorts by start, end, label', () => {
    const entities = [
      entity({ label: '机构', start: 2, end: 5 }),
      entity({ label: '人物', start: 2, end: 5 }),
      entity({ label: '地点', start: 2, end: 4 }),
      entity({ label: '时间', start: 0, end: 9 }),
    ];
    assert.deepEqual(
      dedupeEntities(entities).map((e) => [e.start, e.end, e.label]),
      [
        [0, 9, '时间'],
        [2, 4, '地点'],
        [2, 5, '人物'],
        [2, 5, '机构'],
      ],
    );
  });

  it('returns empty for no entities', () => {
    assert.deepEqual(dedupeEntities([]), []);
  });
});

describe('dedupeEntities when the model wins', () => {
  const modelWins = {
    modelLabel: (label: string) => label === '时间',
    ruleWins: (e: Entity) => e.end > 20,
  };
  const time = (fields: Partial<Entity> & Pick<Entity, 'start' | 'end'>) =>
    entity({ label: '时间', ...fields });
  const rule = { source: 'time', score: 1 };

  it('keeps the model span and drops an overlapping rule span', () => {
    const model = time({ start: 2, end: 6 });
    const found = dedupeEntities(
      [model, time({ start: 4, end: 6, ...rule })],
      modelWins,
    );
    assert.deepEqual(found, [model]);
  });

  it('keeps the model span when it only partly overlaps the rule span', () => {
    const model = time({ start: 2, end: 6 });
    const found = dedupeEntities(
      [model, time({ start: 4, end: 9, ...rule })],
      modelWins,
    );
    assert.deepEqual(found, [model]);
  });

  it('keeps a rule span that covers every model span it overlaps', () => {
    const whole = time({
      start: 0,
      end: 12,
      ...rule,
      value: '1998-03-05T20:00',
    });
    const found = dedupeEntities(
      [time({ start: 0, end: 9 }), time({ start: 10, end: 12 }), whole],
      modelWins,
    );
    assert.deepEqual(found, [whole]);
  });

  it('gives the model span the value of a rule on the same span', () => {
    const model = time({ start: 0, end: 9 });
    const found = dedupeEntities(
      [time({ start: 0, end: 9, ...rule, value: '1998-03-05' }), model],
      modelWins,
    );
    assert.deepEqual(found, [{ ...model, value: '1998-03-05' }]);
  });

  it('gives a model span the value of a rule span it starts with', () => {
    const model = time({ start: 0, end: 9 });
    const found = dedupeEntities(
      [model, time({ start: 0, end: 7, ...rule, value: '2024-10-01' })],
      modelWins,
    );
    assert.deepEqual(found, [{ ...model, value: '2024-10-01' }]);
  });

  it('gives no value when the rest of the model span moves the time', () => {
    const model = time({ start: 0, end: 10, text: '2024年8月1日前' });
    const found = dedupeEntities(
      [model, time({ start: 0, end: 9, ...rule, value: '2024-08-01' })],
      modelWins,
    );
    assert.deepEqual(found, [model]);
  });

  it('gives no value before an unread number', () => {
    const model = time({ start: 0, end: 10, text: '1998年3月32日' });
    const found = dedupeEntities(
      [model, time({ start: 0, end: 7, ...rule, value: '1998-03' })],
      modelWins,
    );
    assert.deepEqual(found, [model]);
  });

  it('keeps the rule span when the model cut the time into pieces', () => {
    const whole = time({ start: 0, end: 11, ...rule, value: '2024-05-01' });
    const found = dedupeEntities(
      [time({ start: 0, end: 5 }), time({ start: 10, end: 13 }), whole],
      modelWins,
    );
    assert.deepEqual(found, [whole]);
  });

  it('keeps a rule span that no model span overlaps', () => {
    const model = time({ start: 0, end: 2 });
    const alone = time({ start: 5, end: 9, ...rule });
    assert.deepEqual(dedupeEntities([model, alone], modelWins), [model, alone]);
  });

  it('keeps a rule span that runs past the cut instead', () => {
    const cutShort = time({ start: 15, end: 20 });
    const whole = time({ start: 15, end: 24, ...rule });
    assert.deepEqual(dedupeEntities([cutShort, whole], modelWins), [whole]);
  });

  it('lets rules win for a label the model was not trained on', () => {
    const ruled = entity({ start: 2, end: 6, ...rule });
    const found = dedupeEntities(
      [entity({ start: 2, end: 4 }), ruled],
      modelWins,
    );
    assert.deepEqual(found, [ruled]);
  });
});

describe('compareEntities', () => {
  it('returns 0 for equal keys', () => {
    const a = entity({ start: 1, end: 2 });
    assert.equal(compareEntities(a, { ...a, score: 0.1 }), 0);
  });
});

describe('mergeChunks', () => {
  it('shifts offsets to the document', () => {
    const line = mergeChunks('d1', [
      {
        range: { start: 10, end: 20, keepFrom: 10, keepTo: 20 },
        entities: [entity({ start: 2, end: 4 })],
      },
    ]);
    assert.deepEqual(spans(line.entities), [[12, 14]]);
  });

  it('drops entities before keepFrom', () => {
    const line = mergeChunks('d1', [
      {
        range: { start: 6, end: 16, keepFrom: 8, keepTo: 14 },
        entities: [entity({ start: 1, end: 3 })],
      },
    ]);
    assert.deepEqual(line.entities, []);
  });

  it('keeps an entity at keepFrom', () => {
    const line = mergeChunks('d1', [
      {
        range: { start: 6, end: 16, keepFrom: 8, keepTo: 14 },
        entities: [entity({ start: 2, end: 5 })],
      },
    ]);
    assert.deepEqual(spans(line.entities), [[8, 11]]);
  });

  it('drops an entity at keepTo', () => {
    const line = mergeChunks('d1', [
      {
        range: { start: 6, end: 16, keepFrom: 8, keepTo: 14 },
        entities: [entity({ start: 8, end: 9 })],
      },
    ]);
    assert.deepEqual(line.entities, []);
  });

  it('keeps an entity ending past keepTo', () => {
    const line = mergeChunks('d1', [
      {
        range: { start: 6, end: 16, keepFrom: 8, keepTo: 14 },
        entities: [entity({ start: 7, end: 10 })],
      },
    ]);
    assert.deepEqual(spans(line.entities), [[13, 16]]);
  });

  it('gives overlap to one window', () => {
    // The span 6..8 lies in both windows, but only the first owns its start.
    const line = mergeChunks('d1', [
      {
        range: { start: 0, end: 10, keepFrom: 0, keepTo: 8 },
        entities: [entity({ start: 6, end: 8 })],
      },
      {
        range: { start: 6, end: 16, keepFrom: 8, keepTo: 16 },
        entities: [entity({ start: 0, end: 2 }), entity({ start: 3, end: 5 })],
      },
    ]);
    assert.deepEqual(spans(line.entities), [
      [6, 8],
      [9, 11],
    ]);
  });

  it('dedupes a chunk sent twice', () => {
    const chunk = {
      range: { start: 4, end: 10, keepFrom: 4, keepTo: 10 },
      entities: [entity({ start: 0, end: 2 })],
    };
    const line = mergeChunks('d1', [chunk, chunk]);
    assert.equal(line.entities.length, 1);
  });

  it('does not change its input', () => {
    const e = entity({ start: 2, end: 4 });
    const range = { start: 10, end: 20, keepFrom: 10, keepTo: 20 };
    mergeChunks('d1', [{ range, entities: [e] }]);
    assert.equal(e.start, 2);
  });

  it('passes the error', () => {
    const line = mergeChunks('d1', [], 'chunk 2 failed');
    assert.deepEqual(line, { id: 'd1', entities: [], error: 'chunk 2 failed' });
  });

  it('omits a missing error', () => {
    const line = mergeChunks('d1', []);
    assert.equal('error' in line, false);
  });
});

describe('formatLine', () => {
  it('orders keys', () => {
    const e = {
      value: '2024-01-02',
      source: 'time',
      score: 1,
      end: 5,
      start: 0,
      text: '2024年1月2日',
      label: '时间',
    };
    const json = formatLine({ error: 'x', entities: [e], id: 'd1' });
    assert.equal(
      json,
      '{"id":"d1","entities":[{"label":"时间","text":"2024年1月2日",' +
        '"start":0,"end":5,"score":1,"source":"time","value":"2024-01-02"}],' +
        '"error":"x"}',
    );
  });

  it('omits a missing value', () => {
    const json = formatLine({
      id: 'd1',
      entities: [entity({ start: 0, end: 2, text: '张三' })],
    });
    assert.equal(
      json,
      '{"id":"d1","entities":[{"label":"人物","text":"张三",' +
        '"start":0,"end":2,"score":0.9,"source":"model"}]}',
    );
  });

  it('drops unknown entity fields', () => {
    const e = { ...entity({ start: 0, end: 1 }), chunk: 3 } as Entity;
    const parsed = JSON.parse(formatLine({ id: 'd1', entities: [e] }));
    assert.equal('chunk' in parsed.entities[0], false);
  });

  it('writes one line', () => {
    const json = formatLine({
      id: 'a\nb',
      entities: [entity({ start: 0, end: 2, text: '第一\n' })],
    });
    assert.equal(json.includes('\n'), false);
  });
});

describe('when many model and rule spans overlap', () => {
  it('drops exactly the model spans a rule overlaps', () => {
    // A seeded generator keeps the case reproducible.
    let seed = 42;
    const next = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    const entities: Entity[] = Array.from({ length: 2000 }, () => {
      const start = next(3000);
      const end = start + 1 + next(6);
      const source = next(4) === 0 ? 'time' : 'model';
      const label = next(2) === 0 ? '时间' : '人物';
      return { label, text: 'x', start, end, score: next(100) / 100, source };
    });
    const kept = dedupeEntities(entities);
    const rules = kept.filter((e) => e.source !== 'model');
    for (const e of kept.filter((k) => k.source === 'model')) {
      const overlapped = rules.some(
        (r) => r.label === e.label && r.start < e.end && e.start < r.end,
      );
      assert.equal(overlapped, false, `${e.label} ${e.start}-${e.end}`);
    }
    const keys = new Set(kept.map((e) => `${e.label}:${e.start}:${e.end}`));
    for (const e of entities.filter((x) => x.source === 'model')) {
      const overlapped = rules.some(
        (r) => r.label === e.label && r.start < e.end && e.start < r.end,
      );
      if (!overlapped) assert.ok(keys.has(`${e.label}:${e.start}:${e.end}`));
    }
  });
});

/** One extracted entity; offsets are code points, end exclusive. */
export interface Entity {
  label: string;
  text: string;
  start: number;
  end: number;
  /** start × end probability for the model, 1 for rules. */
  score: number;
  /** `model` or the name of the rule plugin that found it. */
  source: string;
  /** Normalised value, such as an ISO 8601 date. */
  value?: string;
}

/** Orders entities by start, then end, then label. */
export function compareEntities(a: Entity, b: Entity): number {
  return (
    a.start - b.start || a.end - b.end || compareCodeUnits(a.label, b.label)
  );
}

function compareCodeUnits(a: string, b: string): number {
  if (a < b) return -1;
  if (a > b) return 1;
  return 0;
}

/**
 * Removes doubles: the same label on the same span keeps one entry, and a
 * rule span of a label wins over an overlapping model span of that label,
 * because rules are exact on the patterns they cover and carry values.
 */
export function dedupeEntities(entities: Entity[]): Entity[] {
  const byKey = new Map<string, Entity>();
  for (const e of entities) {
    const key = `${e.label}\u0000${e.start}\u0000${e.end}`;
    const seen = byKey.get(key);
    if (!seen || preferOver(e, seen)) byKey.set(key, e);
  }
  const unique = [...byKey.values()].sort(compareEntities);
  const rules = unique.filter((e) => e.source !== 'model');
  return unique.filter(
    (e) =>
      e.source !== 'model' ||
      !rules.some(
        (r) => r.label === e.label && r.start < e.end && e.start < r.end,
      ),
  );
}

function preferOver(a: Entity, b: Entity): boolean {
  if ((a.source === 'model') !== (b.source === 'model'))
    return a.source !== 'model';
  return a.score > b.score;
}

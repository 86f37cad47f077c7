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
  const rules = new Map<string, RuleSpans>();
  for (const e of unique) {
    if (e.source === 'model') continue;
    let spans = rules.get(e.label);
    if (!spans) rules.set(e.label, (spans = { starts: [], maxEnds: [] }));
    const last = spans.maxEnds[spans.maxEnds.length - 1] ?? 0;
    spans.starts.push(e.start);
    spans.maxEnds.push(Math.max(last, e.end));
  }
  return unique.filter(
    (e) => e.source !== 'model' || !overlapsRule(rules.get(e.label), e),
  );
}

/** Rule spans of one label by start, with the running maximum of their ends. */
interface RuleSpans {
  starts: number[];
  maxEnds: number[];
}

// A binary search keeps a document with hundreds of thousands of entities
// linear-logarithmic instead of comparing every model span with every rule.
function overlapsRule(spans: RuleSpans | undefined, e: Entity): boolean {
  if (!spans) return false;
  let lo = 0;
  let hi = spans.starts.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (spans.starts[mid] < e.end) lo = mid + 1;
    else hi = mid;
  }
  // Rules starting before e ends overlap it when one of them ends after e starts.
  return lo > 0 && spans.maxEnds[lo - 1] > e.start;
}

function preferOver(a: Entity, b: Entity): boolean {
  if ((a.source === 'model') !== (b.source === 'model'))
    return a.source !== 'model';
  return a.score > b.score;
}

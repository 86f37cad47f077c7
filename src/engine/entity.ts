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

/** Which of an overlapping model span and rule span of one label stays. */
export interface Precedence {
  /** Whether a model span wins over the rule spans it overlaps. */
  modelWins(e: Entity): boolean;
  /** Whether a rule span wins over every model span, even a winning one. */
  ruleWins(e: Entity): boolean;
}

/** Rules win: they are exact on the patterns they cover and carry values. */
const RULES_WIN: Precedence = {
  modelWins: () => false,
  ruleWins: () => true,
};

/**
 * Removes doubles: the same label on the same span keeps one entry, and of
 * a model span and a rule span of one label that overlap, one gives way, as
 * `precedence` says. By default the rule span wins. A model span that wins
 * takes the rule's value when both cover the same characters.
 */
export function dedupeEntities(
  entities: Entity[],
  precedence: Precedence = RULES_WIN,
): Entity[] {
  const byKey = new Map<string, Entity>();
  for (const e of entities) {
    const key = `${e.label}\u0000${e.start}\u0000${e.end}`;
    const seen = byKey.get(key);
    byKey.set(key, seen ? keepOne(e, seen, precedence) : e);
  }
  const unique = [...byKey.values()].sort(compareEntities);
  const rules = new Map<string, SpanIndex>();
  const strongRules = new Map<string, SpanIndex>();
  for (const e of unique) {
    if (e.source === 'model') continue;
    addSpan(rules, e);
    if (precedence.ruleWins(e)) addSpan(strongRules, e);
  }
  const winners = new Map<string, SpanIndex>();
  const wins = (e: Entity) =>
    precedence.modelWins(e) && !overlaps(strongRules.get(e.label), e);
  for (const e of unique) {
    if (e.source === 'model' && wins(e)) addSpan(winners, e);
  }
  return unique.filter((e) => {
    if (e.source === 'model')
      return !overlaps(rules.get(e.label), e) || wins(e);
    return precedence.ruleWins(e) || !overlaps(winners.get(e.label), e);
  });
}

/** Keeps one of two entities on the same span of a label. */
function keepOne(a: Entity, b: Entity, precedence: Precedence): Entity {
  const aModel = a.source === 'model';
  if (aModel === (b.source === 'model')) return a.score > b.score ? a : b;
  const [model, rule] = aModel ? [a, b] : [b, a];
  if (!precedence.modelWins(model) || precedence.ruleWins(rule)) return rule;
  if (rule.value === undefined || model.value !== undefined) return model;
  return { ...model, value: rule.value };
}

function addSpan(index: Map<string, SpanIndex>, e: Entity): void {
  let spans = index.get(e.label);
  if (!spans) index.set(e.label, (spans = { starts: [], maxEnds: [] }));
  const last = spans.maxEnds[spans.maxEnds.length - 1] ?? 0;
  spans.starts.push(e.start);
  spans.maxEnds.push(Math.max(last, e.end));
}

/** Spans of one label by start, with the running maximum of their ends. */
interface SpanIndex {
  starts: number[];
  maxEnds: number[];
}

// A binary search keeps a document with hundreds of thousands of entities
// linear-logarithmic instead of comparing every span with every other.
function overlaps(spans: SpanIndex | undefined, e: Entity): boolean {
  if (!spans) return false;
  let lo = 0;
  let hi = spans.starts.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (spans.starts[mid] < e.end) lo = mid + 1;
    else hi = mid;
  }
  // Spans starting before e ends overlap it when one of them ends after e starts.
  return lo > 0 && spans.maxEnds[lo - 1] > e.start;
}

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

/** The rule that picks between overlapping model and rule spans of one label. */
export interface Precedence {
  /**
   * Whether the model's spans of a label win over the rule spans they
   * overlap, unless a rule span covers one of them.
   */
  modelLabel(label: string): boolean;
  /** Whether a rule span wins over every model span it overlaps. */
  ruleWins(e: Entity): boolean;
}

/** Rules win: they are exact on the patterns they cover and carry values. */
const RULES_WIN: Precedence = {
  modelLabel: () => false,
  ruleWins: () => true,
};

/**
 * Removes doubles: the same label on the same span keeps one entry, and of
 * model spans and rule spans of one label that overlap, one side gives way.
 *
 * By default the rule spans win. For a label of `precedence.modelLabel`,
 * each group of overlapping spans keeps its model spans, since a model
 * trained on the label reads context a pattern cannot (光明日报 contains no
 * 明日). The group keeps its rule spans instead when one of them covers a
 * model span, which the model then cut short or into pieces (1998年3月5日
 * of 1998年3月5日晚8点), or when `precedence.ruleWins` holds for one.
 *
 * A model span that stays takes the value of a rule span on the same
 * characters, or of the one rule span that starts it, unless what follows
 * moves the time (8月1日前).
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
  const byLabel = new Map<string, Entity[]>();
  for (const e of unique) {
    const list = byLabel.get(e.label);
    if (list) list.push(e);
    else byLabel.set(e.label, [e]);
  }
  const deduped: Entity[] = [];
  for (const [label, list] of byLabel) {
    const survivors = precedence.modelLabel(label)
      ? keepByGroup(list, precedence)
      : keepRules(list);
    deduped.push(...survivors);
  }
  return deduped.sort(compareEntities);
}

/** Keeps the rule spans and the model spans that overlap none of them. */
function keepRules(list: Entity[]): Entity[] {
  const rules: SpanIndex = { starts: [], maxEnds: [] };
  for (const e of list) if (e.source !== 'model') addSpan(rules, e);
  return list.filter((e) => e.source !== 'model' || !overlaps(rules, e));
}

/**
 * Splits spans of one label, sorted by start, into groups joined by
 * overlaps and keeps one side of each group, as {@link dedupeEntities}
 * describes.
 */
function keepByGroup(list: Entity[], precedence: Precedence): Entity[] {
  const survivors: Entity[] = [];
  let group: Entity[] = [];
  let groupEnd = -1;
  const close = () => {
    const models = group.filter((e) => e.source === 'model');
    const rules = group.filter((e) => e.source !== 'model');
    const covered = (m: Entity) =>
      rules.some((r) => r.start <= m.start && m.end <= r.end);
    // A rule span that covers a model span shows the model cut the time
    // into pieces (2024年 and 节假期 of 2024年五一劳动节假期).
    const rulesWin =
      models.length === 0 ||
      (rules.length > 0 &&
        (rules.some((r) => precedence.ruleWins(r)) || models.some(covered)));
    if (rulesWin) survivors.push(...rules);
    else survivors.push(...models.map((m) => withValue(m, rules)));
  };
  for (const e of list) {
    if (e.start >= groupEnd && group.length > 0) {
      close();
      group = [];
    }
    group.push(e);
    groupEnd = Math.max(groupEnd, e.end);
  }
  if (group.length > 0) close();
  return survivors;
}

/**
 * Gives a model span the value of the one rule span that starts with it and
 * lies inside it, as 2024年国庆 inside 2024年国庆假期: the value then names
 * the part the rule read, at its precision.
 */
function withValue(model: Entity, rules: Entity[]): Entity {
  if (model.value !== undefined) return model;
  const inside = rules.filter(
    (r) =>
      r.value !== undefined && r.start === model.start && r.end <= model.end,
  );
  if (inside.length !== 1) return model;
  // 8月1日前 and 春节前夕 name another time than the rule's date. A number
  // right after the rule span is a part the rules could not read, such as
  // the 32日 of 1998年3月32日, so the date is not the one in the text.
  const rest = [...model.text].slice(inside[0].end - model.start).join('');
  if (SHIFTING_REST.test(rest) || UNREAD_NUMBER.test(rest)) return model;
  return { ...model, value: inside[0].value };
}

/** Words after a date that move the time away from it. */
const SHIFTING_REST = /[前后以来左右之夕]/u;
/** A number at the start of the rest of a model span. */
const UNREAD_NUMBER = /^[0-9０-９]/u;

/** Keeps one of two entities on the same span of a label. */
function keepOne(a: Entity, b: Entity, precedence: Precedence): Entity {
  const aModel = a.source === 'model';
  if (aModel === (b.source === 'model')) return a.score > b.score ? a : b;
  const [model, rule] = aModel ? [a, b] : [b, a];
  if (!precedence.modelLabel(model.label) || precedence.ruleWins(rule)) {
    return rule;
  }
  if (rule.value === undefined || model.value !== undefined) return model;
  return { ...model, value: rule.value };
}

function addSpan(spans: SpanIndex, e: Entity): void {
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
function overlaps(spans: SpanIndex, e: Entity): boolean {
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

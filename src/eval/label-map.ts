import { LABEL_SEPARATORS } from '../config/config.js';

/**
 * Corpus tag → schema label, for every gold format at once. The tag names
 * of the corpora do not clash: MSRA (PER, LOC, ORG), Weibo (PER.NAM, ...),
 * Resume (NAME, TITLE, ...), CLUENER (lower-case words) and People's Daily
 * POS tags (nr, ns, nt, t). LOC and ORG mean the same in MSRA and Resume.
 * The values agree with the label tables in training/corpora.py.
 */
export const DEFAULT_TAG_LABELS: Readonly<Record<string, string>> = {
  // MSRA
  PER: '人物',
  LOC: '地点',
  ORG: '机构',
  // Weibo: named mentions only, because *.NOM tags mark nominal mentions
  // such as 朋友, which the schema labels do not cover.
  'PER.NAM': '人物',
  'LOC.NAM': '地点',
  'GPE.NAM': '地点',
  'ORG.NAM': '机构',
  // Resume
  NAME: '人物',
  TITLE: '职位',
  EDU: '学历',
  PRO: '专业',
  RACE: '民族',
  CONT: '国籍',
  // CLUENER
  name: '人物',
  position: '职位',
  address: '地址',
  book: '书名',
  company: '公司',
  game: '游戏',
  government: '政府',
  movie: '电影',
  organization: '组织',
  scene: '景点',
  // People's Daily 1998
  nr: '人物',
  ns: '地点',
  nt: '机构',
  t: '时间',
};

/**
 * Builds the tag → label map: the defaults, each schema label as its own
 * tag (for gold files already written with the schema's labels), then each
 * `TAG=LABEL` pair of a `--map` value, which replaces or adds one tag.
 * Tags are case-sensitive.
 *
 * @param spec comma-separated `TAG=LABEL` pairs, such as `PER=人物,LOC=地点`
 * @throws RangeError naming the pair that is not of the form TAG=LABEL,
 *   or whose label contains a separator such as `;` or `、`
 */
export function parseLabelMap(spec?: string): Map<string, string> {
  const map = new Map(Object.entries(DEFAULT_TAG_LABELS));
  for (const label of Object.values(DEFAULT_TAG_LABELS)) map.set(label, label);
  if (spec === undefined) return map;

  for (const pair of spec.split(/[,，]/)) {
    if (pair.trim() === '') continue;
    const match = /^([^=\s]+)\s*=\s*(\S+)$/.exec(pair.trim());
    if (!match) {
      throw new RangeError(
        `--map: expected TAG=LABEL pairs separated by commas, got "${pair}"` +
          ` in "${spec}"; for example --map PER=人物,LOC=地点`,
      );
    }
    const separator = LABEL_SEPARATORS.exec(match[2])?.[0];
    if (separator !== undefined) {
      throw new RangeError(
        `--map: label "${match[2]}" of "${pair}" contains "${separator}"; ` +
          `map one tag to one label and separate pairs with commas`,
      );
    }
    map.set(match[1], match[2]);
  }
  return map;
}

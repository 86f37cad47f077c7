import table from 'opencc-js/dict/TSCharacters';

let simplified: Map<number, number> | undefined;

/**
 * Maps a traditional Chinese character to its simplified form, one code
 * point to one. The table is OpenCC's, with 3,512 entries in opencc-js 1.4.
 * Other code points are returned unchanged.
 */
export function toSimplified(cp: number): number {
  simplified ??= buildMap();
  return simplified.get(cp) ?? cp;
}

function buildMap(): Map<number, number> {
  const map = new Map<number, number>();
  for (const entry of table.split('|')) {
    const [from, to] = entry.split(' ');
    // Only one-to-one pairs keep offsets; the table has no others today.
    if (!from || !to || [...from].length !== 1 || [...to].length !== 1)
      continue;
    map.set(from.codePointAt(0)!, to.codePointAt(0)!);
  }
  return map;
}

/**
 * Maps the traditional characters of a text to simplified ones with
 * {@link toSimplified}, keeping every UTF-16 index: a pair that would
 * change the length of its character in code units is not applied.
 */
export function simplifyText(text: string): string {
  let out = '';
  let from = 0;
  for (let i = 0; i < text.length; i++) {
    const cp = text.codePointAt(i)!;
    const wide = cp > 0xffff;
    const mapped = toSimplified(cp);
    if (mapped !== cp && mapped > 0xffff === wide) {
      out += text.slice(from, i) + String.fromCodePoint(mapped);
      from = i + (wide ? 2 : 1);
    }
    if (wide) i++;
  }
  return from === 0 ? text : out + text.slice(from);
}

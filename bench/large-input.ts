/**
 * Measures memory and checks offsets on large inputs. A CSV of about 1 GiB
 * goes through the reading path of `extract` and `enqueue`, then through
 * `extractFile` with a pool that skips the model. One document of about
 * 5 MB goes through the real `extract` command. See bench/README.md.
 */
import { once } from 'node:events';
import { createReadStream } from 'node:fs';
import {
  createWriteStream,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { finished } from 'node:stream/promises';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

import type { PlannedChunk } from '../src/chunking/plan.js';
import { planChunks } from '../src/chunking/plan.js';
import { createLogger } from '../src/cli/logger.js';
import { configuredChunkLength } from '../src/cli/queue-session.js';
import {
  loadSettings,
  PACKAGE_ROOT,
  type Settings,
} from '../src/config/config.js';
import { dedupeEntities, type Entity } from '../src/engine/entity.js';
import type { ExtractionPool } from '../src/engine/pool.js';
import type { Engine } from '../src/pipeline/engine.js';
import { extractFile } from '../src/pipeline/extract-file.js';
import { IdSet } from '../src/pipeline/id-set.js';
import {
  readCsvDocuments,
  type CsvSourceOptions,
} from '../src/producer/csv-source.js';
import { countCodePoints } from '../src/tokenizer/tokenizer.js';
import { runChild, stopAllChildren } from './child-process.js';

const HELP = `Usage: node dist/bench/large-input.js [options]

Writes a large CSV and streams it through readCsvDocuments and planChunks,
then through extractFile with a pool that skips the model, sampling memory.
Then runs \`uie-batch extract --threads 1\` on one large document and on a
small one, measuring peak RSS and checking every entity's offsets.

  --csv-mb N      size of the generated CSV in MiB; 0 skips it (default 1024)
  --doc-mb N      size of the single document in MB; 0 skips it (default 5)
  --small-kb N    size of the small document in kB (default 50)
  --sample-mb N   MiB of input between memory samples (default 50)
  --check-every N rows between full checks of the chunk texts (default 1000)
  --timeout S     seconds each extract may run (default 3600)
  -h, --help      show this help
`;

/** Settings of one bench run, from the command line. */
interface LargeInputOptions {
  /** Size of the generated CSV, in MiB; 0 skips the reading pass. */
  csvMb: number;
  /** Size of the single document, in MB of UTF-8; 0 skips the extract runs. */
  docMb: number;
  /** Size of the small document, in kB of UTF-8. */
  smallKb: number;
  /** Input between memory samples, in MiB. */
  sampleMb: number;
  /** Rows between full checks of chunk texts against the document. */
  checkEvery: number;
  /** Seconds each extract child may run before it is killed. */
  timeoutSeconds: number;
}

function parseOptions(argv: string[]): LargeInputOptions | undefined {
  const { values } = parseArgs({
    args: argv,
    options: {
      'csv-mb': { type: 'string', default: '1024' },
      'doc-mb': { type: 'string', default: '5' },
      'small-kb': { type: 'string', default: '50' },
      'sample-mb': { type: 'string', default: '50' },
      'check-every': { type: 'string', default: '1000' },
      timeout: { type: 'string', default: '3600' },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
  });
  if (values.help) return undefined;
  return {
    csvMb: number('--csv-mb', values['csv-mb'], 0, 4096),
    docMb: number('--doc-mb', values['doc-mb'], 0, 100),
    smallKb: number('--small-kb', values['small-kb'], 1, 10_000),
    sampleMb: number('--sample-mb', values['sample-mb'], 1, 4096),
    checkEvery: number('--check-every', values['check-every'], 1, 1e9),
    timeoutSeconds: number('--timeout', values.timeout, 1, 86_400),
  };
}

function number(name: string, raw: string, min: number, max: number): number {
  const value = Number(raw);
  if (!Number.isFinite(value) || value < min || value > max) {
    throw new RangeError(
      `${name}: expected a number from ${min} to ${max}, got "${raw}"`,
    );
  }
  return value;
}

function progress(message: string): void {
  process.stderr.write(`large-input: ${message}\n`);
}

// ---------------------------------------------------------------------------
// Text generation. Every row and document is a pure function of its seed, so
// the reading pass can regenerate a row and compare it with what it read.

/** Returns a seeded generator of numbers in [0, 1) (mulberry32). */
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const PEOPLE = ['张伟', '李娜', '王芳', '刘洋', '陈静', '杨帆', '赵磊', '黄敏'];
const PLACES = ['北京市', '上海市', '广州市', '深圳市', '杭州市', '成都市'];
const ORGS = ['复旦大学', '中国科学院', '人民医院', '气象局', '华为公司'];
const TIMES = ['昨天', '2019年3月5日', '去年冬天', '上午九点', '1998年'];
// Emoji and CJK Extension B characters are two UTF-16 code units each, so an
// entity after one has different code-point and UTF-16 offsets.
const ASTRAL = ['😀', '🎉', '👍', '𠀀', '𠮷', '𪚥'];

type Pick = <T>(list: readonly T[]) => T;

const TEMPLATES: ((pick: Pick) => string)[] = [
  (p) => `${p(PEOPLE)}在${p(PLACES)}工作`,
  (p) => `${p(TIMES)}，${p(PEOPLE)}去了${p(PLACES)}的${p(ORGS)}`,
  (p) => `${p(PEOPLE)}和${p(PEOPLE)}在${p(PLACES)}创办了一家公司`,
  (p) => `${p(PEOPLE)}于${p(TIMES)}到达${p(PLACES)}`,
  (p) => `${p(PEOPLE)}是${p(ORGS)}的研究员`,
  (p) => `${p(ORGS)}的代表说"${p(PLACES)}的项目进展顺利"`,
  (p) => `${p(PLACES)}今年的产值达到1,200亿元，${p(PEOPLE)}表示满意`,
];

/** Returns one sentence, sometimes with an emoji or Extension B character. */
function sentence(rand: () => number): string {
  const pick: Pick = (list) => list[Math.floor(rand() * list.length)];
  let text = pick(TEMPLATES)(pick);
  if (rand() < 0.2) text = pick(ASTRAL) + text;
  if (rand() < 0.1) text += pick(ASTRAL);
  return text + pick(['。', '。', '。', '！', '？', '；']);
}

/**
 * Returns a clause list of more than 300 characters with no sentence end,
 * which the chunker must cut into overlapping windows.
 */
function longSentence(rand: () => number): string {
  let text = '';
  while (text.length < 320) text += sentence(rand).slice(0, -1) + '，';
  return text.slice(0, -1) + '。';
}

/** Returns paragraphs of about `sentences` sentences, split by newlines. */
function paragraphs(rand: () => number, sentences: number): string {
  let text = '';
  for (let s = 0; s < sentences; s++) {
    text += rand() < 0.002 ? longSentence(rand) : sentence(rand);
    if (s < sentences - 1 && rand() < 0.15) text += '\n';
  }
  return text;
}

/** One generated CSV row. */
interface Row {
  id: string;
  title: string;
  text: string;
  published: string;
}

/** Returns row n (1-based) of the large CSV; the same n gives the same row. */
function makeRow(n: number): Row {
  const rand = random(Math.imul(n, 2654435761) ^ 0x5bd1e995);
  // Mostly news items of 3 to 25 sentences; one row in 200 is an article of
  // up to 400 sentences, which becomes dozens of chunks.
  const count =
    rand() < 0.005
      ? 100 + Math.floor(rand() * 300)
      : 3 + Math.floor(rand() * 23);
  const place = PLACES[Math.floor(rand() * PLACES.length)];
  const month = String(1 + Math.floor(rand() * 12)).padStart(2, '0');
  return {
    id: `n${n}`,
    title: rand() < 0.3 ? `${place}快讯, 第${n}期` : `${place}新闻`,
    text: paragraphs(rand, count),
    published: `2024-${month}-15`,
  };
}

function csvField(value: string): string {
  return /[",\r\n]/.test(value) ? `"${value.replace(/"/g, '""')}"` : value;
}

function csvLine(row: Row): string {
  const fields = [row.id, row.title, row.text, row.published];
  return fields.map(csvField).join(',') + '\n';
}

/**
 * Writes rows to a CSV until it reaches targetBytes, in blocks of about
 * 1 MiB with backpressure, so the file is never held in memory.
 */
async function writeLargeCsv(
  path: string,
  targetBytes: number,
): Promise<number> {
  const out = createWriteStream(path);
  let block = 'id,title,text,published\n';
  let bytes = 0;
  let rows = 0;
  while (bytes < targetBytes) {
    const line = csvLine(makeRow(++rows));
    block += line;
    bytes += Buffer.byteLength(line);
    if (block.length < 1 << 20) continue;
    if (!out.write(block)) await once(out, 'drain');
    block = '';
  }
  out.end(block);
  await finished(out);
  return rows;
}

// ---------------------------------------------------------------------------
// Part 1: the reading path on a large CSV.

/** Memory and counts at one point of the reading pass. */
interface ReadSample {
  mibRead: number;
  rows: number;
  chunks: number;
  rssMib: number;
  /** V8 heap in use after a full garbage collection. */
  heapMib: number;
}

/** Counts of a finished reading pass. */
interface ReadPass {
  samples: ReadSample[];
  rows: number;
  rowsWritten: number;
  chunks: number;
  windowRows: number;
  checkedRows: number;
  rejected: number;
  seconds: number;
  idSets: IdSetCost;
}

const MIB = 1024 * 1024;

// The CSV options the CLI passes when no CSV flag is given.
const CLI_CSV_OPTIONS: CsvSourceOptions = {
  idColumn: undefined,
  idColumnExplicit: false,
  textColumn: undefined,
  encoding: undefined,
  delimiter: undefined,
};

setFlagsFromString('--expose-gc');
const collectGarbage = runInNewContext('gc') as () => void;

function sampleMemory(
  mibRead: number,
  rows: number,
  chunks: number,
): ReadSample {
  // RSS is read before the collection, so it contains garbage, as it would
  // during a real run; the heap figure is what is still reachable.
  const rssMib = process.memoryUsage.rss() / MIB;
  collectGarbage();
  const heapMib = process.memoryUsage().heapUsed / MIB;
  return { mibRead, rows, chunks, rssMib, heapMib };
}

/**
 * Checks that the keep ranges of the chunks tile the document, so every
 * entity start is owned by exactly one chunk, and that no chunk is longer
 * than the model allows.
 */
function checkTiling(
  id: string,
  length: number,
  chunks: PlannedChunk[],
  chunkLength: number,
): void {
  let owned = 0;
  for (const [k, { range }] of chunks.entries()) {
    const bad =
      range.keepFrom !== owned ||
      range.start > range.keepFrom ||
      range.keepTo > range.end ||
      range.keepFrom >= range.keepTo ||
      range.end - range.start > chunkLength;
    if (bad) {
      throw new Error(
        `document ${id}, chunk ${k}: invalid range ${JSON.stringify(range)} after ${owned} owned code points`,
      );
    }
    owned = range.keepTo;
  }
  if (owned !== length) {
    throw new Error(
      `document ${id}: chunks own ${owned} of ${length} code points`,
    );
  }
}

/** Checks each chunk's text against the document's code-point slice. */
function checkSlices(id: string, text: string, chunks: PlannedChunk[]): void {
  const chars = [...text];
  for (const [k, chunk] of chunks.entries()) {
    const { start, end } = chunk.range;
    if (chars.slice(start, end).join('') !== chunk.text) {
      throw new Error(
        `document ${id}, chunk ${k}: text differs from code points ${start}–${end} of the document`,
      );
    }
  }
}

/**
 * Streams the CSV through readCsvDocuments and planChunks with the options
 * `extract` and `enqueue` pass, checks every row's id and chunk tiling, and
 * a sample of rows' texts and chunk texts.
 */
async function readLargeCsv(
  path: string,
  rowsWritten: number,
  options: LargeInputOptions,
): Promise<ReadPass> {
  // UIE_* variables are ignored so that they cannot change what is measured.
  const settings = loadSettings({}, {});
  const chunkLength = configuredChunkLength(settings);
  const size = statSync(path).size;
  const sampleBytes = options.sampleMb * MIB;
  const pass: ReadPass = {
    samples: [sampleMemory(0, 0, 0)],
    rows: 0,
    rowsWritten,
    chunks: 0,
    windowRows: 0,
    checkedRows: 0,
    rejected: 0,
    seconds: 0,
    idSets: { setMib: 0, idSetMib: 0 },
  };
  let bytesRead = 0;
  let nextSample = sampleBytes;
  const started = performance.now();

  const events = readCsvDocuments(path, {
    ...CLI_CSV_OPTIONS,
    onProgress: (fraction) => (bytesRead = fraction * size),
  });
  for await (const event of events) {
    if (event.type === 'reject') {
      pass.rejected++;
      progress(`row rejected: ${JSON.stringify(event.reject)}`);
      continue;
    }
    const doc = event.document;
    const n = ++pass.rows;
    if (doc.id !== `n${n}`) {
      throw new Error(`row ${n}: expected id n${n}, got ${doc.id}`);
    }
    const chunks = planChunks(doc.text, chunkLength, settings.chunkOverlap);
    pass.chunks += chunks.length;
    checkTiling(doc.id, countCodePoints(doc.text), chunks, chunkLength);
    const windows = chunks.some((c) => c.range.keepTo < c.range.end);
    if (windows) pass.windowRows++;
    if (windows || n % options.checkEvery === 0) {
      if (doc.text !== makeRow(n).text) {
        throw new Error(`row ${n}: text differs from the generated row`);
      }
      checkSlices(doc.id, doc.text, chunks);
      pass.checkedRows++;
    }
    if (bytesRead < nextSample) continue;
    pass.samples.push(sampleMemory(bytesRead / MIB, n, pass.chunks));
    progress(`${formatReadSample(pass.samples.at(-1)!)}`);
    nextSample += sampleBytes;
  }

  pass.seconds = (performance.now() - started) / 1000;
  pass.samples.push(sampleMemory(size / MIB, pass.rows, pass.chunks));
  if (pass.rows !== rowsWritten) {
    throw new Error(`read ${pass.rows} rows of the ${rowsWritten} written`);
  }
  pass.idSets = measureIdSets(pass.rows);
  return pass;
}

/** Memory, in MiB, of the ids of a run in two kinds of set. */
interface IdSetCost {
  /** A JavaScript Set, on the V8 heap. */
  setMib: number;
  /** The IdSet that `extract` keeps, in ArrayBuffers outside the heap. */
  idSetMib: number;
}

/**
 * Measures what the ids of the run cost in a JavaScript Set and in the
 * IdSet that `extract` fills to reject duplicate ids. `enqueue` keeps ids
 * in Redis instead.
 */
function measureIdSets(rows: number): IdSetCost {
  const memory = () => {
    collectGarbage();
    const { heapUsed, arrayBuffers } = process.memoryUsage();
    return heapUsed + arrayBuffers;
  };
  const start = memory();
  const set = new Set<string>();
  for (let n = 1; n <= rows; n++) set.add(`n${n}`);
  const setMib = (memory() - start) / MIB;
  set.clear();

  const middle = memory();
  const idSet = new IdSet();
  for (let n = 1; n <= rows; n++) idSet.add(`n${n}`);
  const idSetMib = (memory() - middle) / MIB;
  if (idSet.size !== rows) {
    throw new Error(`IdSet has ${idSet.size} ids, expected ${rows}`);
  }
  return { setMib, idSetMib };
}

function formatIdCost(mib: number, ids: number): string {
  return `${mib.toFixed(1)} MiB (${((mib * MIB) / ids).toFixed(0)} bytes per id)`;
}

function formatReadSample(s: ReadSample): string {
  return [
    s.mibRead.toFixed(0),
    s.rows,
    s.chunks,
    s.rssMib.toFixed(1),
    s.heapMib.toFixed(1),
  ].join(' | ');
}

function formatReadPass(pass: ReadPass, csvMib: number): string {
  const rows = pass.samples.map((s) => `| ${formatReadSample(s)} |`);
  // The first sample at or after 100 MiB of input is the baseline, so
  // start-up allocations do not count as growth.
  const base = pass.samples.find((s) => s.mibRead >= 100) ?? pass.samples[0];
  const peak = pass.samples
    .filter((s) => s.mibRead >= base.mibRead)
    .reduce((a, b) => (b.rssMib > a.rssMib ? b : a));
  const maxRssMib = process.resourceUsage().maxRSS / 1024;
  return [
    `## Reading path: ${csvMib.toFixed(0)} MiB CSV, no model`,
    '',
    '| MiB read | rows | chunks | RSS MiB | heap MiB |',
    '| --- | --- | --- | --- | --- |',
    ...rows,
    '',
    `rows written / read / rejected: ${pass.rowsWritten} / ${pass.rows} / ${pass.rejected}`,
    `rows with overlapping windows: ${pass.windowRows}; rows whose text and chunk texts were checked: ${pass.checkedRows}`,
    `read, chunk and check time: ${pass.seconds.toFixed(1)} s (${(csvMib / pass.seconds).toFixed(1)} MiB/s)`,
    `peak sampled RSS from ${base.mibRead.toFixed(0)} MiB on ÷ RSS at ${base.mibRead.toFixed(0)} MiB: ${peak.rssMib.toFixed(1)} ÷ ${base.rssMib.toFixed(1)} = ${(peak.rssMib / base.rssMib).toFixed(2)}×`,
    `process maxRSS (includes writing the CSV): ${maxRssMib.toFixed(1)} MiB`,
    `${pass.rows} ids in a JavaScript Set: ${formatIdCost(pass.idSets.setMib, pass.rows)}; in the IdSet of extract: ${formatIdCost(pass.idSets.idSetMib, pass.rows)}`,
  ].join('\n');
}

// ---------------------------------------------------------------------------
// Part 1b: the same CSV through extractFile, with a pool in place of the model.

/** Memory at one point of the extractFile pass. */
interface ExtractSample {
  chunks: number;
  rssMib: number;
  heapMib: number;
  /** Memory of ArrayBuffers and Buffers, where IdSet keeps the ids. */
  arrayBuffersMib: number;
}

/** Counts of a finished extractFile pass. */
interface ExtractPass {
  samples: ExtractSample[];
  documents: number;
  chunks: number;
  checkedLines: number;
  seconds: number;
}

/**
 * Returns an engine whose pool finds one entity, the first character, in
 * every chunk, and samples memory every `sampleChunks` chunks. Everything
 * around the pool runs as in `uie-batch extract`.
 */
function engineWithoutModel(
  settings: Settings,
  chunkLength: number,
  sampleChunks: number,
  samples: ExtractSample[],
): Engine {
  let chunks = 0;
  let nextSample = sampleChunks;
  const run = async (task: { texts: string[] }): Promise<Entity[][]> => {
    chunks += task.texts.length;
    if (chunks >= nextSample) {
      samples.push(sampleExtract(chunks));
      nextSample += sampleChunks;
    }
    return task.texts.map((text) => [firstCharacter(text)]);
  };
  const pool = { threads: 2, queueSize: 0, run, close: async () => {} };
  return {
    // extractFile calls only these members of the pool.
    pool: pool as unknown as ExtractionPool,
    manifest: { name: 'none', version: '0' } as Engine['manifest'],
    untrained: () => [],
    chunkLength,
    settings,
  };
}

function sampleExtract(chunks: number): ExtractSample {
  const { rssMib, heapMib } = sampleMemory(0, 0, chunks);
  const arrayBuffersMib = process.memoryUsage().arrayBuffers / MIB;
  return { chunks, rssMib, heapMib, arrayBuffersMib };
}

function firstCharacter(text: string): Entity {
  const char = String.fromCodePoint(text.codePointAt(0)!);
  return {
    label: '人物',
    text: char,
    start: 0,
    end: 1,
    score: 1,
    source: 'model',
  };
}

/**
 * Runs extractFile on the CSV with the pool above, then checks that the
 * output has one line per row in order and, for a sample of rows, one
 * entity at each chunk start the chunk owns.
 */
async function extractLargeCsv(
  dir: string,
  path: string,
  read: ReadPass,
  options: LargeInputOptions,
): Promise<ExtractPass> {
  const settings = loadSettings({}, {});
  const chunkLength = configuredChunkLength(settings);
  const csvMib = statSync(path).size / MIB;
  const sampleChunks = Math.ceil((read.chunks * options.sampleMb) / csvMib);
  const samples = [sampleExtract(0)];
  const engine = engineWithoutModel(
    settings,
    chunkLength,
    sampleChunks,
    samples,
  );
  const output = join(dir, 'large.jsonl');
  const log = createLogger('warn', 'large-input');

  const started = performance.now();
  const summary = await extractFile(
    engine,
    path,
    output,
    join(dir, 'large.rejects.jsonl'),
    CLI_CSV_OPTIONS,
    log,
  );
  const seconds = (performance.now() - started) / 1000;
  samples.push(sampleExtract(summary.chunks));
  try {
    const checkedLines = await checkExtractOutput(output, read, options);
    return { ...summary, samples, checkedLines, seconds };
  } finally {
    rmSync(output, { force: true });
  }
}

async function checkExtractOutput(
  output: string,
  read: ReadPass,
  options: LargeInputOptions,
): Promise<number> {
  const settings = loadSettings({}, {});
  const chunkLength = configuredChunkLength(settings);
  const lines = createInterface({ input: createReadStream(output) });
  let n = 0;
  let checked = 0;
  for await (const text of lines) {
    const line = JSON.parse(text) as OutputLine;
    if (line.id !== `n${++n}`) {
      throw new Error(`output line ${n}: expected id n${n}, got ${line.id}`);
    }
    if (n % options.checkEvery !== 0) continue;
    const row = makeRow(n).text;
    const expected = planChunks(row, chunkLength, settings.chunkOverlap)
      .filter((c) => c.range.keepFrom === c.range.start)
      .map((c) => `${c.range.start} ${firstCharacter(c.text).text}`);
    const got = line.entities.map((e) => `${e.start} ${e.text}`);
    if (got.join() !== expected.join()) {
      throw new Error(`output line ${n}: entities differ from the chunks`);
    }
    checkEntities(row, line.entities);
    checked++;
  }
  if (n !== read.rows) {
    throw new Error(`output has ${n} lines for ${read.rows} rows`);
  }
  return checked;
}

function formatExtractPass(pass: ExtractPass, baseIndex: number): string {
  const rows = pass.samples.map(
    (s) =>
      `| ${s.chunks} | ${s.rssMib.toFixed(1)} | ${s.heapMib.toFixed(1)} | ${s.arrayBuffersMib.toFixed(1)} |`,
  );
  // As in the reading pass, the sample after about 100 MiB is the baseline.
  const first = Math.min(baseIndex, pass.samples.length - 1);
  const base = pass.samples[first];
  const peak = pass.samples
    .slice(first)
    .reduce((a, b) => (b.rssMib > a.rssMib ? b : a));
  return [
    '## extractFile on the same CSV, pool without model',
    '',
    '| chunks extracted | RSS MiB | heap MiB | array buffers MiB |',
    '| --- | --- | --- | --- |',
    ...rows,
    '',
    `documents / chunks: ${pass.documents} / ${pass.chunks}; output lines checked against their chunks: ${pass.checkedLines}`,
    `time: ${pass.seconds.toFixed(1)} s`,
    `peak sampled RSS from ${base.chunks} chunks on ÷ RSS at ${base.chunks} chunks: ${peak.rssMib.toFixed(1)} ÷ ${base.rssMib.toFixed(1)} = ${(peak.rssMib / base.rssMib).toFixed(2)}×`,
  ].join('\n');
}

// ---------------------------------------------------------------------------
// Part 2: one large document through the real extract command.

const BIN = join(PACKAGE_ROOT, 'bin/uie-batch.js');

// Loaded into the extract child with --require: at exit the main thread
// writes the process's peak RSS, which the parent cannot read once the
// child has been reaped.
const MAX_RSS_PRELOAD = `const { writeFileSync } = require('node:fs');
const { isMainThread } = require('node:worker_threads');
if (isMainThread && process.env.LARGE_INPUT_RSS_FILE) {
  process.on('exit', () => {
    writeFileSync(process.env.LARGE_INPUT_RSS_FILE, String(process.resourceUsage().maxRSS));
  });
}
`;

/** Returns one document of about targetBytes of UTF-8, in paragraphs. */
function makeDocument(targetBytes: number, seed: number): string {
  const rand = random(seed);
  const parts: string[] = [];
  let bytes = 0;
  while (bytes < targetBytes) {
    const part = paragraphs(rand, 20) + '\n';
    parts.push(part);
    bytes += Buffer.byteLength(part);
  }
  return parts.join('');
}

/** Results of one extract run on a one-document CSV. */
interface ExtractRun {
  name: string;
  bytes: number;
  codePoints: number;
  chunks: number;
  entities: number;
  /** Entities whose code-point start differs from their UTF-16 start. */
  shifted: number;
  wallSeconds: number;
  peakRssMib: number;
  /** Time of dedupeEntities over the output's entities in this process. */
  dedupeSeconds: number;
}

/** Output line of extract, as far as the checks read it. */
interface OutputLine {
  id: string;
  entities: Entity[];
  error?: string;
}

async function extractDocument(
  dir: string,
  name: string,
  text: string,
  timeoutSeconds: number,
): Promise<ExtractRun> {
  const csv = join(dir, `${name}.csv`);
  const output = join(dir, `${name}.jsonl`);
  const rssFile = join(dir, `${name}.maxrss`);
  const preload = join(dir, 'max-rss.cjs');
  writeFileSync(preload, MAX_RSS_PRELOAD);
  writeFileSync(csv, `id,text\n${name},${csvField(text)}\n`);

  progress(`extract ${name}: ${Buffer.byteLength(text)} bytes`);
  const args = [BIN, 'extract', csv, '-o', output, '--threads', '1'];
  const child = await runChild(process.execPath, args, {
    env: {
      LOG_LEVEL: 'warn',
      NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --require "${preload}"`,
      LARGE_INPUT_RSS_FILE: rssFile,
    },
    timeoutSeconds,
  });
  const chunks = Number(/\((\d+) chunks\)/.exec(child.stderr)?.[1] ?? NaN);
  const line = readOutput(output, name);
  const shifted = checkEntities(text, line.entities);
  const started = performance.now();
  dedupeEntities(line.entities);
  const dedupeSeconds = (performance.now() - started) / 1000;
  rmSync(output, { force: true });

  return {
    name,
    bytes: Buffer.byteLength(text),
    codePoints: countCodePoints(text),
    chunks,
    entities: line.entities.length,
    shifted,
    wallSeconds: child.wallMs / 1000,
    peakRssMib: Number(readFileSync(rssFile, 'utf8')) / 1024,
    dedupeSeconds,
  };
}

function readOutput(path: string, id: string): OutputLine {
  const lines = readFileSync(path, 'utf8').split('\n').filter(Boolean);
  if (lines.length !== 1) {
    throw new Error(`${path}: expected 1 line, got ${lines.length}`);
  }
  const line = JSON.parse(lines[0]) as OutputLine;
  if (line.id !== id) throw new Error(`${path}: expected id ${id}`);
  if (line.error !== undefined) {
    throw new Error(`${path}: document failed: ${line.error}`);
  }
  return line;
}

/**
 * Checks every entity's code-point offsets against the text, their order
 * and that no span is repeated.
 *
 * @returns the number of entities whose UTF-16 start differs from their
 *   code-point start
 */
function checkEntities(text: string, entities: Entity[]): number {
  const chars = [...text];
  const utf16Start = new Int32Array(chars.length + 1);
  chars.forEach((c, i) => (utf16Start[i + 1] = utf16Start[i] + c.length));
  const seen = new Set<string>();
  let shifted = 0;
  let previous = -1;
  for (const e of entities) {
    const slice = chars.slice(e.start, e.end).join('');
    const key = `${e.label} ${e.start} ${e.end}`;
    if (e.start >= e.end || slice !== e.text) {
      throw new Error(
        `entity ${key} "${e.text}": the text has "${slice}" there`,
      );
    }
    if (e.start < previous) throw new Error(`entity ${key} is out of order`);
    if (seen.has(key)) throw new Error(`entity ${key} appears twice`);
    seen.add(key);
    previous = e.start;
    if (utf16Start[e.start] !== e.start) shifted++;
  }
  return shifted;
}

function formatExtractRuns(small: ExtractRun, large: ExtractRun): string {
  const row = (r: ExtractRun) =>
    `| ${r.name} | ${(r.bytes / 1e6).toFixed(2)} | ${r.codePoints} | ${r.chunks} | ${r.entities} | ${r.shifted} | ${r.wallSeconds.toFixed(1)} | ${r.dedupeSeconds.toFixed(2)} | ${r.peakRssMib.toFixed(1)} |`;
  return [
    '## extract --threads 1 on one document',
    '',
    '| document | MB | code points | chunks | entities | entities whose UTF-16 start differs | wall s | dedupeEntities s | peak RSS MiB |',
    '| --- | --- | --- | --- | --- | --- | --- | --- | --- |',
    row(small),
    row(large),
    '',
    `peak RSS ${large.name} ÷ ${small.name}: ${(large.peakRssMib / small.peakRssMib).toFixed(2)}×`,
    `wall time ${large.name} ÷ ${small.name}: ${(large.wallSeconds / small.wallSeconds).toFixed(1)}× for ${(large.bytes / small.bytes).toFixed(1)}× the text`,
    'every entity offset matched the text; no entity was repeated',
  ].join('\n');
}

// ---------------------------------------------------------------------------

/** One line with the CPU, memory, load average and Node.js version. */
function describeMachine(): string {
  const cpu = cpus()[0]?.model.trim() ?? 'unknown CPU';
  const gib = (totalmem() / 1024 ** 3).toFixed(0);
  return (
    `${cpus().length} × ${cpu}, ${gib} GiB, Node.js ${process.version}, ` +
    `1-minute load average ${loadavg()[0].toFixed(2)} at start`
  );
}

async function main(argv: string[]): Promise<void> {
  const options = parseOptions(argv);
  if (!options) {
    process.stdout.write(HELP);
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), 'uie-large-input-'));
  const onSignal = (signal: NodeJS.Signals) => {
    progress(`${signal} received; stopping child processes and cleaning up`);
    void stopAllChildren().finally(() => {
      rmSync(dir, { recursive: true, force: true });
      process.exit(130);
    });
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  process.stdout.write(describeMachine() + '\n\n');
  try {
    if (options.csvMb > 0) await measureReading(dir, options);
    if (options.docMb > 0) await measureExtract(dir, options);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function measureReading(
  dir: string,
  options: LargeInputOptions,
): Promise<void> {
  const path = join(dir, 'large.csv');
  progress(`writing ${options.csvMb} MiB CSV to ${path}`);
  const rows = await writeLargeCsv(path, options.csvMb * MIB);
  const csvMib = statSync(path).size / MIB;
  progress(`reading ${rows} rows`);
  try {
    const pass = await readLargeCsv(path, rows, options);
    process.stdout.write(formatReadPass(pass, csvMib) + '\n\n');
    progress('running extractFile with a pool that skips the model');
    const extracted = await extractLargeCsv(dir, path, pass, options);
    const baseIndex = Math.ceil(100 / options.sampleMb);
    process.stdout.write(formatExtractPass(extracted, baseIndex) + '\n\n');
  } finally {
    rmSync(path, { force: true });
  }
}

async function measureExtract(
  dir: string,
  options: LargeInputOptions,
): Promise<void> {
  const smallText = makeDocument(options.smallKb * 1000, 1);
  const largeText = makeDocument(options.docMb * 1e6, 2);
  const small = await extractDocument(
    dir,
    'small',
    smallText,
    options.timeoutSeconds,
  );
  const large = await extractDocument(
    dir,
    'large',
    largeText,
    options.timeoutSeconds,
  );
  process.stdout.write(formatExtractRuns(small, large) + '\n');
}

main(process.argv.slice(2)).catch((err: unknown) => {
  process.stderr.write(
    `large-input failed: ${err instanceof Error ? err.message : String(err)}\n`,
  );
  process.exitCode = 1;
});

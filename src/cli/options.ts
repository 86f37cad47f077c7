/** A command-line option, declared once for parsing and for --help. */
export interface OptionSpec {
  name: string;
  short?: string;
  type: 'string' | 'boolean';
  /** Setting this option overrides, for config-backed options. */
  setting?: string;
  help: string;
}

/** A subcommand with its positional arguments and options. */
export interface CommandSpec {
  name: string;
  usage: string;
  summary: string;
  options: OptionSpec[];
}

const schema: OptionSpec = {
  name: 'schema',
  type: 'string',
  setting: 'schema',
  help: 'labels to extract, comma-separated (default: the schema setting, UIE_SCHEMA; 人物,地点,机构,时间 in config/default.json)',
};
const threads: OptionSpec = {
  name: 'threads',
  type: 'string',
  setting: 'threads',
  help: 'pool threads, each with its own model (default: CPUs available)',
};
const model: OptionSpec = {
  name: 'model',
  type: 'string',
  setting: 'modelDir',
  help: 'model folder with model.json (default models/tiny)',
};
const csvOptions: OptionSpec[] = [
  {
    name: 'id-column',
    type: 'string',
    help: 'header of the id column (default id; row number if absent)',
  },
  {
    name: 'text-column',
    type: 'string',
    help: 'header of the text column (default text)',
  },
  {
    name: 'encoding',
    type: 'string',
    help: 'file encoding: utf-8 (default), gb18030, gbk, utf-16le',
  },
  {
    name: 'delimiter',
    type: 'string',
    help: 'field delimiter: one character, or "tab" (default ,)',
  },
];
const run: OptionSpec = {
  name: 'run',
  type: 'string',
  help: 'run name: letters, digits, ".", "_" and "-" (default: today\'s date)',
};

const archive: OptionSpec = {
  name: 'archive',
  type: 'string',
  help: 'archive folder with .csv, .jsonl and .txt files, also gzipped (required)',
};

export const COMMANDS: CommandSpec[] = [
  {
    name: 'extract',
    usage: 'uie-batch extract FILE.csv|- -o OUT.jsonl|-',
    summary:
      'extract entities from a CSV file or standard input (-), without Redis',
    options: [
      {
        name: 'output',
        short: 'o',
        type: 'string',
        help: 'output JSONL file, or - for standard output (required)',
      },
      {
        name: 'rejects',
        type: 'string',
        help: 'file for rejected rows (default: OUT.rejects.jsonl beside a regular output file, else NAME.rejects.jsonl in the working directory)',
      },
      schema,
      threads,
      model,
      ...csvOptions,
    ],
  },
  {
    name: 'enqueue',
    usage: 'uie-batch enqueue FILE.csv|- [--run NAME]',
    summary:
      'split a CSV file or standard input (-) into queued chunks; repeating adds nothing',
    options: [run, schema, model, ...csvOptions],
  },
  {
    name: 'work',
    usage: 'uie-batch work [--threads N] [--exit-when-drained]',
    summary: 'process queued chunks until stopped with SIGTERM or SIGINT',
    options: [
      threads,
      model,
      {
        name: 'exit-when-drained',
        type: 'boolean',
        help: 'exit once the queue has no waiting or active jobs and no enqueue is still queuing (waits 5 s for a first job or producer)',
      },
    ],
  },
  {
    name: 'export',
    usage: 'uie-batch export --run NAME -o OUT.jsonl',
    summary: 'write one JSONL line per document of a run, in input order',
    options: [
      { ...run, help: 'run name to export (required)' },
      {
        name: 'output',
        short: 'o',
        type: 'string',
        help: 'output JSONL file, or - for standard output (required)',
      },
      {
        name: 'partial',
        type: 'boolean',
        help: 'write the run even if some chunks have no result yet',
      },
    ],
  },
  {
    name: 'forget',
    usage: 'uie-batch forget --run NAME [--force]',
    summary:
      "delete a run's Redis records but keep its exported and part files",
    options: [
      { ...run, help: 'run name to forget (required)' },
      {
        name: 'force',
        type: 'boolean',
        help:
          'forget the run even while it has waiting or active jobs. Its ' +
          'waiting jobs are removed and active ones finish without being counted',
      },
    ],
  },
  {
    name: 'scan',
    usage: 'uie-batch scan --archive DIR [--run NAME]',
    summary:
      'queue the new and changed documents of an archive folder into a new run',
    options: [
      archive,
      {
        ...run,
        help:
          'name of the new run: letters, digits, ".", "_" and "-" ' +
          '(default: scan-YYYYMMDDTHHMMSSZ, the start time in UTC)',
      },
      schema,
      model,
    ],
  },
  {
    name: 'schedule',
    usage:
      'uie-batch schedule --archive DIR --cron PATTERN [--tz ZONE] | --remove --archive DIR',
    summary:
      'register, replace or remove the job scheduler that scans an archive folder',
    options: [
      archive,
      {
        name: 'cron',
        type: 'string',
        help: 'cron pattern of the scans, e.g. "0 2 * * *" for 02:00 daily (required unless --remove)',
      },
      {
        name: 'tz',
        type: 'string',
        help: 'IANA time zone the pattern is read in, e.g. Asia/Shanghai (default UTC)',
      },
      {
        name: 'remove',
        type: 'boolean',
        help: 'remove the scheduler of the archive folder instead',
      },
    ],
  },
  {
    name: 'status',
    usage: 'uie-batch status [--run NAME] [--json]',
    summary:
      'show queue counts and, per run, documents, chunks done, rate and ETA',
    options: [
      { ...run, help: 'show only this run (default: every run)' },
      {
        name: 'json',
        type: 'boolean',
        help: 'print one JSON object instead of a table',
      },
    ],
  },
  {
    name: 'eval',
    usage: 'uie-batch eval --gold FILE --format bio|bmes|cluener|pku [--json]',
    summary:
      'score the engine against a labelled file: precision, recall and F1',
    options: [
      {
        name: 'gold',
        type: 'string',
        help: 'labelled file to score against (required)',
      },
      {
        name: 'format',
        type: 'string',
        help:
          'gold file format (required): bio (MSRA, Weibo), bmes (Resume), ' +
          "cluener (JSON lines) or pku (People's Daily 1998)",
      },
      {
        name: 'map',
        type: 'string',
        help:
          'TAG=LABEL pairs, comma-separated, that replace or add to the ' +
          'built-in tag map, e.g. PER=人物,LOC=地点; other tags are not scored',
      },
      {
        ...schema,
        help:
          'labels to extract and score, comma-separated ' +
          '(default: the mapped labels found in the gold file)',
      },
      threads,
      model,
      {
        name: 'limit',
        type: 'string',
        help: 'score only the first N sentences (default: all)',
      },
      {
        name: 'encoding',
        type: 'string',
        help: 'gold file encoding (default utf-8; gbk for --format pku)',
      },
      {
        name: 'json',
        type: 'boolean',
        help: 'print one JSON object instead of a table',
      },
    ],
  },
];

export const GLOBAL_OPTIONS: OptionSpec[] = [
  { name: 'help', short: 'h', type: 'boolean', help: 'show help' },
];

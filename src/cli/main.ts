import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';

import type { Logger } from 'pino';

import { loadSettings, PACKAGE_ROOT, type Settings } from '../config/config.js';
import { isUserError, UsageError } from '../errors/errors.js';
import {
  COMMANDS,
  GLOBAL_OPTIONS,
  type CommandSpec,
  type OptionSpec,
} from './options.js';

/** Parsed command line: the command, its positionals and option values. */
export interface Invocation {
  command: CommandSpec;
  positionals: string[];
  values: Record<string, string | boolean | undefined>;
}

/**
 * Runs the CLI with argv (without node and script); sets process.exitCode.
 *
 * @example
 * await main(['extract', 'corpus.csv', '-o', 'results.jsonl']);
 */
export async function main(argv: string[]): Promise<void> {
  let log: Logger | undefined;
  let engine: typeof import('../pipeline/engine.js') | undefined;
  try {
    const parsed = parseCommandLine(argv);
    if (!parsed) return;
    const overrides = settingOverrides(parsed);
    const settings = loadSettings(
      overrides.values,
      process.env,
      undefined,
      overrides.names,
    );
    if (ENGINE_COMMANDS.has(parsed.command.name)) {
      // The pool threads start now, so that their start overlaps loading
      // the command's modules; startEngine takes them over.
      engine = await import('../pipeline/engine.js');
      engine.prestartEngine(settings);
    }
    const { createLogger } = await import('./logger.js');
    log = createLogger(settings.logLevel);
    const code = await runCommand(parsed, settings, log);
    process.exitCode = code;
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    if (log && !isUserError(err)) log.error({ err }, 'command failed');
    process.stderr.write(`uie-batch: ${message}\n`);
    process.exitCode = 1;
  } finally {
    // A command that failed before its engine started leaves the early
    // pool to close here.
    await engine?.releasePrestarted();
  }
}

/** Commands that start the extraction engine. */
const ENGINE_COMMANDS = new Set(['extract', 'eval', 'work']);

/**
 * Ends the process at once with an exit code, for a command that must not
 * wait until nothing is left to run, such as a stopped worker whose Redis
 * client keeps reconnecting. Pending log lines are written before message,
 * so the message does not land inside one.
 *
 * @param message - text for stderr, with its own line end
 */
export function exitProcess(
  log: Logger,
  code: number,
  message?: string,
): never {
  log.flush();
  if (message) process.stderr.write(message);
  process.exit(code);
}

/**
 * Parses argv. Prints the help and returns undefined for --help or when no
 * command is given. Without a command, the help goes to stderr and the exit
 * code is 1, as for any usage error, so a script that lost its command fails.
 */
export function parseCommandLine(argv: string[]): Invocation | undefined {
  const [name, ...rest] = argv;
  if (name === undefined || name === '') {
    process.stderr.write(`uie-batch: no command given\n\n${globalHelp()}`);
    process.exitCode = 1;
    return undefined;
  }
  if (name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(globalHelp());
    return undefined;
  }
  if (name === '--version' || name === '-V') {
    process.stdout.write(`uie-batch ${packageVersion()}\n`);
    return undefined;
  }
  const command = COMMANDS.find((c) => c.name === name);
  if (!command) {
    throw new UsageError(
      `unknown command "${name}"; commands are ${COMMANDS.map((c) => c.name).join(', ')}. Run uie-batch --help`,
    );
  }
  const specs = [...command.options, ...GLOBAL_OPTIONS];
  const options = Object.fromEntries(
    specs.map((o) => [
      o.name,
      { type: o.type, ...(o.short ? { short: o.short } : {}) },
    ]),
  );
  let parsed;
  try {
    parsed = parseArgs({
      args: rest,
      options,
      allowPositionals: true,
      strict: true,
    });
  } catch (err) {
    throw new UsageError(
      `${parseErrorMessage(err, rest, specs)}. Run uie-batch ${command.name} --help`,
    );
  }
  if (parsed.values.help) {
    process.stdout.write(commandHelp(command));
    return undefined;
  }
  return { command, positionals: parsed.positionals, values: parsed.values };
}

/**
 * Returns a parseArgs error as one line without a final period. For an
 * option followed by an argument that starts with "-", Node's message
 * spans three lines and shows `--name=-XYZ`, not the argument typed.
 */
function parseErrorMessage(
  err: unknown,
  args: string[],
  specs: OptionSpec[],
): string {
  const message = (err as Error).message;
  const ambiguous = /^Option '(-[^' ]+)' argument is ambiguous/.exec(message);
  const option = ambiguous?.[1];
  const at = args.findIndex(
    (arg, i) => arg === option && args[i + 1]?.startsWith('-'),
  );
  if (option === undefined || at < 0) {
    return message.split('\n').join(' ').replace(/\.$/, '');
  }
  const next = args[at + 1];
  const spec = specs.find(
    (s) => `--${s.name}` === option || `-${s.short}` === option,
  );
  const long = spec ? `--${spec.name}` : option;
  return (
    `${option} has no value: the next argument ${JSON.stringify(next)} starts with "-", so it is read as an option. ` +
    `Give ${option} a value, or write ${long}=${next} for a value that starts with "-"`
  );
}

/**
 * Returns the settings that the command line overrides, and for each the
 * option that set it, which an error about its value names.
 */
function settingOverrides(inv: Invocation): {
  values: Partial<Record<keyof Settings, unknown>>;
  names: Partial<Record<keyof Settings, string>>;
} {
  const values: Partial<Record<keyof Settings, unknown>> = {};
  const names: Partial<Record<keyof Settings, string>> = {};
  for (const spec of inv.command.options) {
    const value = inv.values[spec.name];
    if (!spec.setting || value === undefined) continue;
    const key = spec.setting as keyof Settings;
    // A path typed on the command line is relative to the working directory.
    values[key] =
      key === 'modelDir' && typeof value === 'string' ? resolve(value) : value;
    names[key] = `--${spec.name}`;
  }
  return { values, names };
}

async function runCommand(
  inv: Invocation,
  settings: Settings,
  log: Logger,
): Promise<number> {
  // extract and export import no BullMQ, so they start faster.
  if (inv.command.name === 'extract') {
    const { extract } = await import('./extract-command.js');
    return extract(inv, settings, log);
  }
  if (inv.command.name === 'export') {
    const { exportCommand } = await import('./export-command.js');
    return exportCommand(inv, settings, log);
  }
  const commands = await import('./commands.js');
  switch (inv.command.name) {
    case 'enqueue':
      return commands.enqueue(inv, settings, log);
    case 'work':
      return commands.work(inv, settings, log);
    case 'forget':
      return commands.forget(inv, settings, log);
    case 'scan': {
      const { scan } = await import('./archive-commands.js');
      return scan(inv, settings, log);
    }
    case 'schedule': {
      const { schedule } = await import('./archive-commands.js');
      return schedule(inv, settings, log);
    }
    case 'status':
      return commands.status(inv, settings, log);
    case 'eval': {
      const { evalCommand } = await import('./eval-command.js');
      return evalCommand(inv, settings, log);
    }
    default:
      throw new UsageError(`command "${inv.command.name}" is not implemented`);
  }
}

/** Returns the single positional argument or throws a usage error. */
export function onePositional(inv: Invocation, what: string): string {
  if (inv.positionals.length !== 1) {
    throw new UsageError(
      `${inv.command.name}: expected one ${what}, got ${inv.positionals.length}. Usage: ${inv.command.usage}`,
    );
  }
  return inv.positionals[0];
}

/** Returns a required string option or throws a usage error. */
export function requiredOption(inv: Invocation, name: string): string {
  const value = inv.values[name];
  if (typeof value !== 'string' || value === '') {
    throw new UsageError(
      `${inv.command.name}: --${name} is required. Usage: ${inv.command.usage}`,
    );
  }
  return value;
}

function globalHelp(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length));
  const lines = COMMANDS.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`);
  return [
    'uie-batch: extract people, places, organisations and times from Chinese documents',
    '',
    'Usage: uie-batch <command> [options]',
    '',
    'Commands:',
    ...lines,
    '',
    'Run uie-batch <command> --help for its options, uie-batch --version for',
    'the version. Defaults of all settings',
    'are in config/default.json; the README lists the environment variable',
    'that overrides each one.',
    '',
  ].join('\n');
}

function commandHelp(command: CommandSpec): string {
  const label = (o: OptionSpec) =>
    (o.short ? `-${o.short}, ` : '    ') +
    `--${o.name}` +
    (o.type === 'string' ? ' VALUE' : '');
  const width = Math.max(...command.options.map((o) => label(o).length));
  return [
    `Usage: ${command.usage}`,
    '',
    command.summary,
    '',
    'Options:',
    ...command.options.map((o) => `  ${label(o).padEnd(width)}  ${o.help}`),
    '',
  ].join('\n');
}

function packageVersion(): string {
  const pkg = JSON.parse(
    readFileSync(join(PACKAGE_ROOT, 'package.json'), 'utf8'),
  ) as { version: string };
  return pkg.version;
}

/** Returns how the summary names an output: `-` is standard output. */
export function outputName(output: string): string {
  return output === '-' ? 'standard output' : output;
}

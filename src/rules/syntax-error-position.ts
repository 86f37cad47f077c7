import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** Position of a syntax error in a source file, as Node.js reports it. */
export interface SourcePosition {
  /** Path of the file. */
  file: string;
  /** 1-based line number. */
  line: number;
  /** 1-based column, in UTF-16 units, when Node.js marks one. */
  column?: number;
}

// Time limit of `node --check` in ms; parsing one file takes far less.
const CHECK_TIMEOUT_MS = 10_000;

/**
 * Finds the position of the syntax error that the import of a module threw.
 * In Node.js 20 (checked with 20.20.2) the SyntaxError of a failed
 * `import()` of an ES module has no position: its stack starts with the
 * message. The stack of a CommonJS module's SyntaxError starts with
 * `file:line`, the source line and a caret under the error. `node --check`
 * prints the same header for an ES module, so it runs on the file when the
 * stack has none.
 *
 * NOTE: `node --check` parses only the file it is given, so a syntax error
 * in a module that the file imports gets no position.
 *
 * @param path - the module file that was imported
 * @returns the position, or undefined when Node.js reports none
 */
export async function syntaxErrorPosition(
  err: SyntaxError,
  path: string,
): Promise<SourcePosition | undefined> {
  return parseHeader(err.stack ?? '') ?? parseHeader(await checkSyntax(path));
}

/** Formats a position as `file:line:column`, the form editors open. */
export function formatPosition(position: SourcePosition): string {
  const { file, line, column } = position;
  return column === undefined ? `${file}:${line}` : `${file}:${line}:${column}`;
}

/**
 * Reads the header Node.js puts before a syntax error: `file:line`, the
 * source line, then a line of spaces or tabs and a caret under the error.
 */
function parseHeader(text: string): SourcePosition | undefined {
  const match = /^(.+):(\d+)\n[^\n]*\n(?:([ \t]*)\^)?/.exec(text);
  if (!match) return undefined;
  const [, name, line, indent] = match;
  return {
    file: name.startsWith('file:') ? fileURLToPath(name) : name,
    line: Number(line),
    ...(indent !== undefined ? { column: indent.length + 1 } : {}),
  };
}

/** Returns what `node --check` prints on stderr for a file. */
function checkSyntax(path: string): Promise<string> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['--check', path],
      { timeout: CHECK_TIMEOUT_MS },
      (_err, _stdout, stderr) => resolve(stderr),
    );
  });
}

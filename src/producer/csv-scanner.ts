import { Transform } from 'node:stream';

/** A quoted field whose closing quote is followed by other text. */
export interface BadQuote {
  /** 0-based position of the record in the file, the header included. */
  record: number;
  /** 0-based position of the field in its record. */
  field: number;
}

const QUOTE = 0x22;
const CR = 0x0d;
const LF = 0x0a;
const UTF8_BOM = [0xef, 0xbb, 0xbf];

const FIELD_START = 0;
const UNQUOTED = 1;
const QUOTED = 2;
/** A quote in a quoted field, which closes it unless a quote follows. */
const QUOTE_IN_QUOTED = 3;
/** Some bytes of a multi-byte delimiter after a closing quote. */
const DELIMITER_AFTER_QUOTE = 4;

/**
 * Counts the lines of a CSV file's UTF-8 bytes and finds quoted fields with
 * text after the closing quote, as in `"abc"x`, which csv-parse 7 with
 * `relax_quotes` keeps, quotes included, without an error. It splits
 * records as csv-parse does with the options of readCsvDocuments. A quote
 * opens a quoted field only as its first character, and two quotes in a
 * quoted field are one quote. CRLF, LF and CR each end a line, and outside
 * quotes a record. A UTF-8 byte order mark at the start is skipped, as
 * csv-parse does with `bom`.
 */
export class CsvScanner {
  /** Bad quotes not yet taken, in file order, at most one per record. */
  private readonly badQuotes: BadQuote[] = [];
  private readonly delimiter: Buffer;
  /** The delimiter's bytes as one number, to compare with `lastBytes`. */
  private readonly packedDelimiter: number;
  private readonly byteMask: number;
  /** The last bytes read, as many as the delimiter has, as one number. */
  private lastBytes = 0;
  private state = FIELD_START;
  private record = 0;
  private field = 0;
  /** Delimiter bytes matched in DELIMITER_AFTER_QUOTE. */
  private matched = 0;
  private lineEnds = 0;
  private afterCr = false;
  private textAfterLineEnd = false;
  /** Bytes of a byte order mark matched at the start, or -1 once past it. */
  private bomAt = 0;

  /** @param delimiter - the field delimiter, one character */
  constructor(delimiter: string) {
    this.delimiter = Buffer.from(delimiter);
    const width = this.delimiter.length;
    this.byteMask = width >= 4 ? 0xffffffff : 2 ** (8 * width) - 1;
    this.packedDelimiter = this.delimiter.reduce((n, b) => n * 256 + b, 0);
  }

  /** Lines read so far: the line ends, and one more when text follows the last. */
  get lines(): number {
    return this.lineEnds + (this.textAfterLineEnd ? 1 : 0);
  }

  /**
   * Returns the position of the bad quote's field in a record, or -1, and
   * removes the bad quotes of that record and the ones before it. Records
   * must be asked for in file order, once csv-parse has returned them.
   */
  takeBadQuote(record: number): number {
    while (this.badQuotes.length > 0 && this.badQuotes[0].record < record) {
      this.badQuotes.shift();
    }
    if (this.badQuotes[0]?.record !== record) return -1;
    return this.badQuotes.shift()!.field;
  }

  /** Returns a stream that scans the bytes written to it and passes them on. */
  createStream(): Transform {
    return new Transform({
      transform: (chunk: Buffer, _encoding, done) => {
        this.scan(chunk);
        done(null, chunk);
      },
    });
  }

  /** Scans the next bytes of the file. */
  scan(bytes: Uint8Array): void {
    for (let i = 0; i < bytes.length; i++) {
      const byte = bytes[i];
      if (this.bomAt >= 0) {
        if (byte === UTF8_BOM[this.bomAt]) {
          this.bomAt = this.bomAt === UTF8_BOM.length - 1 ? -1 : this.bomAt + 1;
          continue;
        }
        // The bytes skipped so far begin another character, so they count.
        const skippedBytes = UTF8_BOM.slice(0, this.bomAt);
        this.bomAt = -1;
        for (const b of skippedBytes) this.readByte(b);
      }
      this.readByte(byte);
    }
  }

  private readByte(byte: number): void {
    const isCrlf = byte === LF && this.afterCr;
    if (byte === CR || (byte === LF && !isCrlf)) this.lineEnds++;
    this.afterCr = byte === CR;
    this.textAfterLineEnd = byte !== CR && byte !== LF;
    this.lastBytes = ((this.lastBytes * 256 + byte) & this.byteMask) >>> 0;
    // The CR before this LF has done what the line end does.
    if (!isCrlf) this.step(byte);
  }

  private step(byte: number): void {
    switch (this.state) {
      case QUOTED:
        if (byte === QUOTE) this.state = QUOTE_IN_QUOTED;
        return;
      case QUOTE_IN_QUOTED:
        if (byte === QUOTE) this.state = QUOTED;
        else this.afterClosingQuote(byte);
        return;
      case DELIMITER_AFTER_QUOTE:
        if (byte === this.delimiter[this.matched]) {
          this.matched++;
          if (this.matched === this.delimiter.length) this.endField();
          return;
        }
        this.addBadQuote();
        this.state = UNQUOTED;
        this.unquoted(byte);
        return;
      case FIELD_START:
        if (byte === QUOTE) {
          this.state = QUOTED;
          return;
        }
        this.state = UNQUOTED;
        this.unquoted(byte);
        return;
      default:
        this.unquoted(byte);
    }
  }

  private afterClosingQuote(byte: number): void {
    if (byte === CR || byte === LF) {
      this.endRecord();
    } else if (byte !== this.delimiter[0]) {
      this.addBadQuote();
      this.state = UNQUOTED;
    } else if (this.delimiter.length === 1) {
      this.endField();
    } else {
      this.state = DELIMITER_AFTER_QUOTE;
      this.matched = 1;
    }
  }

  private unquoted(byte: number): void {
    if (byte === CR || byte === LF) {
      this.endRecord();
    } else if (this.lastBytes === this.packedDelimiter) {
      // UTF-8 output of the decoder is valid, so bytes that equal the
      // delimiter's are the delimiter, not the end of another character.
      this.endField();
    }
  }

  private endField(): void {
    this.field++;
    this.state = FIELD_START;
  }

  private endRecord(): void {
    this.record++;
    this.field = 0;
    this.state = FIELD_START;
  }

  private addBadQuote(): void {
    if (this.badQuotes.at(-1)?.record === this.record) return;
    this.badQuotes.push({ record: this.record, field: this.field });
  }
}

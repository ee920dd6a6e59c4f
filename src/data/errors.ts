// The error every data problem raises (bad input line, missing file, bad config value, tokenizer
// mismatch). It carries the file and line or the config key, so messages point at what to fix.

/** A data-pipeline error; `file`/`line` locate bad input, `key` names a bad option. */
export class DataError extends Error {
  readonly code = 'ERR_DATA';
  /** Input or output file involved, if any. */
  readonly file?: string;
  /** 1-based line number within `file`, if the problem is a line. */
  readonly line?: number;
  /** Option or config key (dotted, OLMo's spelling) at fault, if any. */
  readonly key?: string;
  /** The message without its location prefix. */
  readonly detail: string;
  constructor(message: string, where: { file?: string; line?: number; key?: string; cause?: unknown } = {}) {
    const loc = where.file !== undefined ? (where.line !== undefined ? `${where.file}:${where.line}: ` : `${where.file}: `) : where.key ? `${where.key}: ` : '';
    super(loc + message, where.cause !== undefined ? { cause: where.cause } : undefined);
    this.name = 'DataError';
    this.detail = message;
    this.file = where.file;
    this.line = where.line;
    this.key = where.key;
  }
}


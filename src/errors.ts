/**
 * One error base for everything p5rec reports to a user. It carries facts
 * (file, line, field) so the CLI can print one clear line and a server can
 * pick a status code without parsing messages.
 */
export interface ErrorFacts {
  file?: string;
  /** 1-based line (or record) number in `file`. */
  line?: number;
  field?: string;
  /** Suggested HTTP status when surfaced through the API. */
  status?: number;
}

export class P5recError extends Error {
  readonly facts: ErrorFacts;
  constructor(message: string, facts: ErrorFacts = {}) {
    super(message);
    this.name = 'P5recError';
    this.facts = facts;
  }

  /** `file:line: field 'x': message` — the one line the CLI prints. */
  oneLine(): string {
    const { file, line, field } = this.facts;
    let where = '';
    if (file) where += file;
    if (line !== undefined) where += `${where ? ':' : 'record '}${line}`;
    const head = where ? `${where}: ` : '';
    const fld = field ? `field '${field}': ` : '';
    return `${head}${fld}${this.message}`;
  }
}

/** Bad user input: a malformed file, a missing field, an impossible option. */
export class InputError extends P5recError {
  constructor(message: string, facts: ErrorFacts = {}) {
    super(message, { status: 400, ...facts });
    this.name = 'InputError';
  }
}

/** Something the user asked for does not exist (a model path, a user id). */
export class NotFoundError extends P5recError {
  constructor(message: string, facts: ErrorFacts = {}) {
    super(message, { status: 404, ...facts });
    this.name = 'NotFoundError';
  }
}

export function describeError(err: unknown): string {
  if (err instanceof P5recError) return err.oneLine();
  if (err instanceof Error) return err.message;
  return String(err);
}

/**
 * Parser for the Python-literal lines of Amazon's 2014 metadata files
 * (`{'asin': '0001', 'categories': [['Beauty']], 'price': 12.5}`), which are
 * `repr()` of dicts, not JSON. Handles dicts, lists, tuples, str (single or
 * double quoted, with escapes), int/float, True/False/None.
 */
export function parsePythonLiteral(text: string): unknown {
  const p = new PyParser(text);
  p.ws();
  const v = p.value();
  p.ws();
  if (p.i !== text.length) p.fail('trailing characters');
  return v;
}

class PyParser {
  i = 0;
  constructor(private readonly s: string) {}

  fail(msg: string): never {
    throw new SyntaxError(`${msg} at column ${this.i + 1}`);
  }

  ws(): void {
    while (this.i < this.s.length && /\s/.test(this.s[this.i])) this.i++;
  }

  value(): unknown {
    const c = this.s[this.i];
    if (c === '{') return this.dict();
    if (c === '[') return this.seq(']');
    if (c === '(') return this.seq(')');
    if (c === "'" || c === '"') return this.str();
    if (c === 'u' && (this.s[this.i + 1] === "'" || this.s[this.i + 1] === '"')) {
      this.i++;
      return this.str();
    }
    if (this.s.startsWith('True', this.i)) return (this.i += 4), true;
    if (this.s.startsWith('False', this.i)) return (this.i += 5), false;
    if (this.s.startsWith('None', this.i)) return (this.i += 4), null;
    const m = /^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?/.exec(this.s.slice(this.i, this.i + 64));
    if (m) {
      this.i += m[0].length;
      return Number(m[0]);
    }
    return this.fail(`unexpected ${c === undefined ? 'end of line' : `'${c}'`}`);
  }

  dict(): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    this.i++;
    this.ws();
    if (this.s[this.i] === '}') return this.i++, out;
    while (true) {
      this.ws();
      const k = this.value();
      this.ws();
      if (this.s[this.i] !== ':') this.fail("expected ':'");
      this.i++;
      this.ws();
      out[String(k)] = this.value();
      this.ws();
      const c = this.s[this.i++];
      if (c === '}') return out;
      if (c !== ',') this.fail("expected ',' or '}'");
      this.ws();
      if (this.s[this.i] === '}') return this.i++, out;
    }
  }

  seq(close: string): unknown[] {
    const out: unknown[] = [];
    this.i++;
    this.ws();
    if (this.s[this.i] === close) return this.i++, out;
    while (true) {
      this.ws();
      out.push(this.value());
      this.ws();
      const c = this.s[this.i++];
      if (c === close) return out;
      if (c !== ',') this.fail(`expected ',' or '${close}'`);
      this.ws();
      if (this.s[this.i] === close) return this.i++, out;
    }
  }

  str(): string {
    const q = this.s[this.i++];
    let out = '';
    while (true) {
      if (this.i >= this.s.length) this.fail('unterminated string');
      const c = this.s[this.i++];
      if (c === q) return out;
      if (c !== '\\') {
        out += c;
        continue;
      }
      const e = this.s[this.i++];
      switch (e) {
        case 'n': out += '\n'; break;
        case 't': out += '\t'; break;
        case 'r': out += '\r'; break;
        case '0': out += '\0'; break;
        case 'x': out += String.fromCharCode(parseInt(this.s.slice(this.i, this.i + 2), 16)); this.i += 2; break;
        case 'u': out += String.fromCharCode(parseInt(this.s.slice(this.i, this.i + 4), 16)); this.i += 4; break;
        case 'U': out += String.fromCodePoint(parseInt(this.s.slice(this.i, this.i + 8), 16)); this.i += 8; break;
        case undefined: this.fail('unterminated escape'); break;
        default: out += e; // \\ \' \" and unknown escapes keep the char
      }
    }
  }
}

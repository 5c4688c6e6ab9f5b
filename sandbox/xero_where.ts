/**
 * The subset of Xero's `where` filter language the simulator understands: comparisons
 * (`==`, `=`, `!=`, `<>`, `<`, `<=`, `>`, `>=`), `AND`/`OR`/`&&`/`||`, `NOT`, parentheses, dotted
 * paths (`Contact.ContactID`), `.Contains()`, `.StartsWith()`, `.EndsWith()`, `.ToLower()`,
 * `.ToUpper()`, and the literals `"text"`, numbers, `true`, `false`, `null`, `Guid("…")` and
 * `DateTime(y, m, d)`. Strings have no escape: a `"` inside a value breaks the filter, as on Xero.
 * String comparisons ignore case, like Xero's database collation.
 */

export class WhereError extends Error {}

type Value = string | number | boolean | Date | null | undefined | Record<string, unknown>;
export type Predicate = (record: Record<string, unknown>) => boolean;

type Token =
  | { t: "str"; v: string }
  | { t: "num"; v: number }
  | { t: "id"; v: string }
  | { t: "op"; v: string }
  | { t: "punct"; v: string };

function tokenize(src: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  while (i < src.length) {
    const c = src[i];
    if (/\s/.test(c)) {
      i++;
    } else if (c === '"') {
      const end = src.indexOf('"', i + 1);
      if (end < 0) throw new WhereError("Unterminated string literal");
      out.push({ t: "str", v: src.slice(i + 1, end) });
      i = end + 1;
    } else if (/[0-9]/.test(c) || (c === "-" && /[0-9]/.test(src[i + 1] ?? ""))) {
      const m = /^-?\d+(\.\d+)?/.exec(src.slice(i))!;
      out.push({ t: "num", v: Number(m[0]) });
      i += m[0].length;
    } else if (/[A-Za-z_]/.test(c)) {
      const m = /^[A-Za-z_][A-Za-z0-9_]*/.exec(src.slice(i))!;
      out.push({ t: "id", v: m[0] });
      i += m[0].length;
    } else {
      const two = src.slice(i, i + 2);
      if (["==", "!=", "<>", "<=", ">=", "&&", "||"].includes(two)) {
        out.push({ t: "op", v: two });
        i += 2;
      } else if ("=<>!".includes(c)) {
        out.push({ t: "op", v: c });
        i++;
      } else if ("().,".includes(c)) {
        out.push({ t: "punct", v: c });
        i++;
      } else {
        throw new WhereError(`Unexpected character '${c}'`);
      }
    }
  }
  return out;
}

type Node = (r: Record<string, unknown>) => Value;

/** Case-insensitive property lookup along a dotted path. */
function lookup(record: unknown, path: string[]): Value {
  let cur: unknown = record;
  for (const part of path) {
    if (cur === null || typeof cur !== "object") return undefined;
    const lower = part.toLowerCase();
    const key = Object.keys(cur).find((k) => k.toLowerCase() === lower);
    cur = key === undefined ? undefined : (cur as Record<string, unknown>)[key];
  }
  return cur as Value;
}

function norm(v: Value): string | number | boolean | null | undefined {
  if (v instanceof Date) return v.getTime();
  // NFC too, as the simulator compares names (sandbox/xero_org.ts nameKey).
  if (typeof v === "string") return v.normalize("NFC").toLowerCase();
  if (v !== null && typeof v === "object") return undefined;
  return v;
}

function compare(op: string, a: Value, b: Value): boolean {
  const x = norm(a);
  const y = norm(b);
  switch (op) {
    case "==":
    case "=":
      return (x ?? null) === (y ?? null);
    case "!=":
    case "<>":
      return (x ?? null) !== (y ?? null);
  }
  if (x === null || x === undefined || y === null || y === undefined) return false;
  switch (op) {
    case "<":
      return x < y;
    case "<=":
      return x <= y;
    case ">":
      return x > y;
    case ">=":
      return x >= y;
  }
  throw new WhereError(`Unknown operator ${op}`);
}

class Parser {
  private i = 0;
  constructor(private readonly tokens: Token[]) {}

  parse(): Node {
    const node = this.or();
    if (this.i < this.tokens.length) throw new WhereError("Unexpected text after the expression");
    return node;
  }

  private peek(): Token | undefined {
    return this.tokens[this.i];
  }

  private isWord(...words: string[]): boolean {
    const t = this.peek();
    return !!t && (t.t === "id" || t.t === "op") && words.includes(t.v.toUpperCase());
  }

  private expect(t: Token["t"], v?: string): Token {
    const tok = this.tokens[this.i++];
    if (!tok || tok.t !== t || (v !== undefined && tok.v !== v)) {
      throw new WhereError(`Expected ${v ?? t}`);
    }
    return tok;
  }

  private or(): Node {
    let left = this.and();
    while (this.isWord("OR", "||")) {
      this.i++;
      const l = left, r = this.and();
      left = (rec) => Boolean(l(rec)) || Boolean(r(rec));
    }
    return left;
  }

  private and(): Node {
    let left = this.unary();
    while (this.isWord("AND", "&&")) {
      this.i++;
      const l = left, r = this.unary();
      left = (rec) => Boolean(l(rec)) && Boolean(r(rec));
    }
    return left;
  }

  private unary(): Node {
    if (this.isWord("NOT", "!")) {
      this.i++;
      const inner = this.unary();
      return (rec) => !inner(rec);
    }
    return this.comparison();
  }

  private comparison(): Node {
    const left = this.operand();
    const t = this.peek();
    if (t?.t === "op" && !["&&", "||", "!"].includes(t.v)) {
      this.i++;
      const right = this.operand();
      return (rec) => compare(t.v, left(rec), right(rec));
    }
    return left;
  }

  private operand(): Node {
    const t = this.tokens[this.i++];
    if (!t) throw new WhereError("Unexpected end of expression");
    if (t.t === "punct" && t.v === "(") {
      const inner = this.or();
      this.expect("punct", ")");
      return inner;
    }
    if (t.t === "str") return () => t.v;
    if (t.t === "num") return () => t.v;
    if (t.t !== "id") throw new WhereError(`Unexpected '${t.v}'`);
    const word = t.v.toLowerCase();
    if (word === "true" || word === "false") return () => word === "true";
    if (word === "null") return () => null;
    if (word === "guid" && this.peek()?.v === "(") {
      this.i++;
      const s = this.expect("str").v;
      this.expect("punct", ")");
      return () => s;
    }
    if (word === "datetime" && this.peek()?.v === "(") {
      this.i++;
      const parts: number[] = [];
      while (this.peek()?.v !== ")") {
        parts.push((this.expect("num") as { v: number }).v);
        if (this.peek()?.v === ",") this.i++;
      }
      this.i++;
      const [y, m = 1, d = 1, h = 0, mi = 0, s = 0] = parts;
      const date = new Date(Date.UTC(y, m - 1, d, h, mi, s));
      return () => date;
    }
    return this.path(t.v);
  }

  /** A field path, then any chain of string methods. */
  private path(first: string): Node {
    const parts = [first];
    let node: Node = (rec) => lookup(rec, parts);
    while (this.peek()?.v === ".") {
      this.i++;
      const name = String(this.expect("id").v);
      if (this.peek()?.v === "(") {
        this.i++;
        const args: Node[] = [];
        while (this.peek()?.v !== ")") {
          args.push(this.operand());
          if (this.peek()?.v === ",") this.i++;
          if (!this.peek()) throw new WhereError("Unterminated call");
        }
        this.i++;
        node = method(node, name, args);
      } else {
        parts.push(name);
      }
    }
    return node;
  }
}

function method(target: Node, name: string, args: Node[]): Node {
  const text = (rec: Record<string, unknown>) => String(target(rec) ?? "").toLowerCase();
  const arg = (rec: Record<string, unknown>) => String(args[0]?.(rec) ?? "").toLowerCase();
  switch (name.toLowerCase()) {
    case "contains":
      return (rec) => text(rec).includes(arg(rec));
    case "startswith":
      return (rec) => text(rec).startsWith(arg(rec));
    case "endswith":
      return (rec) => text(rec).endsWith(arg(rec));
    case "tolower":
    case "toupper":
      return (rec) => text(rec);
    default:
      throw new WhereError(`Unknown method ${name}`);
  }
}

/** Compiles a filter; throws WhereError when Xero would reject it. */
export function compileWhere(src: string): Predicate {
  const node = new Parser(tokenize(src)).parse();
  return (record) => Boolean(node(record));
}

// The subset of Go's text/template that `docker --format` users write: field chains, method
// fields with arguments ({{.Label "k"}}), pipelines, variables, if/else/range/with, and the
// docker CLI's functions (json, join, split, lower, upper, title, pad, truncate) on top of
// Go's built-ins. Values print the way Go's fmt %v prints decoded JSON.

export class TemplateError extends Error {
  constructor(message: string) {
    super(`template: ${message}`);
    this.name = "TemplateError";
  }
}

/** Objects carrying this symbol fail on unknown fields, like Go structs; plain JSON objects act as maps. */
export const STRICT = Symbol.for("shoal.template.strict");

type Value = unknown;

// ---------------------------------------------------------------------------------------------
// Syntax tree

type Operand =
  | { kind: "field"; base: "dot"; names: string[] }
  | { kind: "var"; name: string; names: string[] }
  | { kind: "ident"; name: string }
  | { kind: "literal"; value: Value }
  | { kind: "pipe"; pipe: Pipeline; names: string[] };

interface Command {
  operands: Operand[];
}

interface Pipeline {
  decl: string[];
  assign: boolean;
  commands: Command[];
  source: string;
}

type Node =
  | { kind: "text"; text: string }
  | { kind: "action"; pipe: Pipeline }
  | { kind: "if" | "with"; branches: { pipe: Pipeline; body: Node[] }[]; elseBody: Node[] | null }
  | { kind: "range"; pipe: Pipeline; body: Node[]; elseBody: Node[] | null }
  | { kind: "break" | "continue" };

// ---------------------------------------------------------------------------------------------
// Lexing: split the source into text and action segments

interface Segment {
  kind: "text" | "action";
  text: string;
}

function splitSegments(src: string): Segment[] {
  const segments: Segment[] = [];
  let pos = 0;
  while (pos < src.length) {
    const open = src.indexOf("{{", pos);
    if (open < 0) {
      segments.push({ kind: "text", text: src.slice(pos) });
      break;
    }
    let text = src.slice(pos, open);
    let start = open + 2;
    // `{{- ` trims the whitespace before the action; `{{-3}}` is just a negative number.
    if (/^-[ \t\r\n]/.test(src.slice(start, start + 2))) {
      text = text.replace(/[ \t\r\n]+$/, "");
      start += 2;
    }
    if (text) segments.push({ kind: "text", text });
    const close = findClose(src, start);
    let body = src.slice(start, close);
    let next = close + 2;
    if (/[ \t\r\n]-$/.test(body)) {
      body = body.slice(0, -2);
      const m = /^[ \t\r\n]*/.exec(src.slice(next));
      next += m ? m[0].length : 0;
    }
    segments.push({ kind: "action", text: body });
    pos = next;
  }
  return segments;
}

function findClose(src: string, from: number): number {
  let i = from;
  while (i < src.length) {
    const c = src[i];
    if (c === '"' || c === "'") {
      i++;
      while (i < src.length && src[i] !== c) i += src[i] === "\\" ? 2 : 1;
      i++;
    } else if (c === "`") {
      const end = src.indexOf("`", i + 1);
      if (end < 0) break;
      i = end + 1;
    } else if (src.startsWith("/*", i)) {
      const end = src.indexOf("*/", i + 2);
      if (end < 0) break;
      i = end + 2;
    } else if (src.startsWith("}}", i)) {
      return i;
    } else {
      i++;
    }
  }
  throw new TemplateError(`unclosed action starting at "${src.slice(from - 2, from + 20)}"`);
}

// ---------------------------------------------------------------------------------------------
// Lexing inside an action

type Token =
  | { t: "field"; names: string[] }
  | { t: "var"; name: string; names: string[] }
  | { t: "ident"; name: string }
  | { t: "literal"; value: Value }
  | { t: "op"; op: "|" | "(" | ")" | ":=" | "=" | "," }
  | { t: "chain"; names: string[] };

const identRe = /^[A-Za-z_][A-Za-z0-9_]*/;

function unquote(raw: string): string {
  let out = "";
  for (let i = 1; i < raw.length - 1; i++) {
    const c = raw[i];
    if (c !== "\\") {
      out += c;
      continue;
    }
    const e = raw[++i];
    const simple: Record<string, string> = {
      n: "\n",
      t: "\t",
      r: "\r",
      "\\": "\\",
      '"': '"',
      "'": "'",
      a: "\x07",
      b: "\b",
      f: "\f",
      v: "\v",
      "0": "\0",
    };
    if (e === "x" || e === "u" || e === "U") {
      const len = e === "x" ? 2 : e === "u" ? 4 : 8;
      const hex = raw.slice(i + 1, i + 1 + len);
      if (!/^[0-9a-fA-F]+$/.test(hex) || hex.length !== len) throw new TemplateError(`bad escape in ${raw}`);
      out += String.fromCodePoint(parseInt(hex, 16));
      i += len;
    } else if (e in simple) {
      out += simple[e];
    } else {
      throw new TemplateError(`unknown escape sequence \\${e} in ${raw}`);
    }
  }
  return out;
}

function readNames(s: string, pos: number): { names: string[]; end: number } {
  const names: string[] = [];
  let i = pos;
  while (s[i] === ".") {
    const m = identRe.exec(s.slice(i + 1));
    if (!m) break;
    names.push(m[0]);
    i += 1 + m[0].length;
  }
  return { names, end: i };
}

function lexAction(s: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < s.length) {
    const c = s[i];
    if (/\s/.test(c)) {
      i++;
    } else if (s.startsWith(":=", i)) {
      tokens.push({ t: "op", op: ":=" });
      i += 2;
    } else if (c === "|" || c === "(" || c === "=" || c === ",") {
      tokens.push({ t: "op", op: c });
      i++;
    } else if (c === ")") {
      tokens.push({ t: "op", op: ")" });
      i++;
      // `(index . 0).Name`: a field chain glued to a closing parenthesis.
      const { names, end } = readNames(s, i);
      if (names.length > 0) tokens.push({ t: "chain", names });
      i = end;
    } else if (c === '"') {
      let j = i + 1;
      while (j < s.length && s[j] !== '"') j += s[j] === "\\" ? 2 : 1;
      if (j >= s.length) throw new TemplateError(`unterminated string in {{${s}}}`);
      tokens.push({ t: "literal", value: unquote(s.slice(i, j + 1)) });
      i = j + 1;
    } else if (c === "`") {
      const j = s.indexOf("`", i + 1);
      if (j < 0) throw new TemplateError(`unterminated raw string in {{${s}}}`);
      tokens.push({ t: "literal", value: s.slice(i + 1, j) });
      i = j + 1;
    } else if (c === "'") {
      let j = i + 1;
      while (j < s.length && s[j] !== "'") j += s[j] === "\\" ? 2 : 1;
      const ch = unquote(s.slice(i, j + 1));
      tokens.push({ t: "literal", value: ch.codePointAt(0) ?? 0 });
      i = j + 1;
    } else if (c === "." && !/[0-9]/.test(s[i + 1] ?? "")) {
      const { names, end } = readNames(s, i);
      if (names.length === 0) {
        tokens.push({ t: "field", names: [] });
        i++;
      } else {
        tokens.push({ t: "field", names });
        i = end;
      }
    } else if (c === "$") {
      const m = /^[A-Za-z0-9_]*/.exec(s.slice(i + 1));
      const name = "$" + (m ? m[0] : "");
      const { names, end } = readNames(s, i + name.length);
      tokens.push({ t: "var", name, names });
      i = end;
    } else if (/[-+0-9.]/.test(c)) {
      const m = /^[-+]?(0[xX][0-9a-fA-F_]+|(\d[\d_]*)?\.?\d*(?:[eE][-+]?\d+)?)/.exec(s.slice(i));
      const text = m ? m[0] : "";
      const value = Number(text.replace(/_/g, ""));
      if (!text || text === "-" || text === "+" || Number.isNaN(value))
        throw new TemplateError(`bad number syntax in {{${s}}}`);
      tokens.push({ t: "literal", value });
      i += text.length;
    } else {
      const m = identRe.exec(s.slice(i));
      if (!m) throw new TemplateError(`unexpected "${c}" in {{${s}}}`);
      const name = m[0];
      if (name === "true" || name === "false") tokens.push({ t: "literal", value: name === "true" });
      else if (name === "nil") tokens.push({ t: "literal", value: null });
      else tokens.push({ t: "ident", name });
      i += name.length;
    }
  }
  return tokens;
}

// ---------------------------------------------------------------------------------------------
// Parsing

class TokenStream {
  pos = 0;
  constructor(
    readonly tokens: Token[],
    readonly source: string,
  ) {}
  peek(): Token | undefined {
    return this.tokens[this.pos];
  }
  next(): Token | undefined {
    return this.tokens[this.pos++];
  }
  isOp(op: string): boolean {
    const t = this.peek();
    return t !== undefined && t.t === "op" && t.op === op;
  }
}

function parsePipeline(ts: TokenStream, allowDecl: boolean, closing?: ")"): Pipeline {
  const pipe: Pipeline = { decl: [], assign: false, commands: [], source: ts.source };
  if (allowDecl) {
    // `$x :=`, `$i, $e :=` or `$x =`: look ahead without consuming on a miss.
    const save = ts.pos;
    const names: string[] = [];
    for (;;) {
      const t = ts.next();
      if (!t || t.t !== "var" || t.names.length > 0) break;
      names.push(t.name);
      if (ts.isOp(",")) {
        ts.next();
        continue;
      }
      if (ts.isOp(":=") || ts.isOp("=")) {
        const op = ts.next() as { t: "op"; op: string };
        pipe.decl = names;
        pipe.assign = op.op === "=";
      }
      break;
    }
    if (pipe.decl.length === 0) ts.pos = save;
  }
  let cmd: Command = { operands: [] };
  for (;;) {
    const t = ts.peek();
    if (!t || (closing && t.t === "op" && t.op === ")")) break;
    ts.next();
    if (t.t === "op") {
      if (t.op === "|") {
        if (cmd.operands.length === 0)
          throw new TemplateError(`missing command before "|" in {{${ts.source}}}`);
        pipe.commands.push(cmd);
        cmd = { operands: [] };
        continue;
      }
      if (t.op === "(") {
        const inner = parsePipeline(ts, false, ")");
        if (!ts.isOp(")")) throw new TemplateError(`unclosed left paren in {{${ts.source}}}`);
        ts.next();
        let names: string[] = [];
        const chain = ts.peek();
        if (chain && chain.t === "chain") {
          names = chain.names;
          ts.next();
        }
        cmd.operands.push({ kind: "pipe", pipe: inner, names });
        continue;
      }
      throw new TemplateError(`unexpected "${t.op}" in {{${ts.source}}}`);
    }
    if (t.t === "field") cmd.operands.push({ kind: "field", base: "dot", names: t.names });
    else if (t.t === "var") cmd.operands.push({ kind: "var", name: t.name, names: t.names });
    else if (t.t === "ident") cmd.operands.push({ kind: "ident", name: t.name });
    else if (t.t === "literal") cmd.operands.push({ kind: "literal", value: t.value });
    else throw new TemplateError(`unexpected field chain in {{${ts.source}}}`);
  }
  if (cmd.operands.length > 0) pipe.commands.push(cmd);
  else if (pipe.commands.length > 0) throw new TemplateError(`missing command after "|" in {{${ts.source}}}`);
  if (pipe.commands.length === 0) throw new TemplateError(`missing value in {{${ts.source}}}`);
  return pipe;
}

function parseActionPipeline(src: string, skip: number, allowDecl: boolean): Pipeline {
  const ts = new TokenStream(lexAction(src), src.trim());
  ts.pos = skip;
  const pipe = parsePipeline(ts, allowDecl);
  if (ts.peek()) throw new TemplateError(`unexpected ")" in {{${src.trim()}}}`);
  return pipe;
}

interface Frame {
  kind: "root" | "if" | "with" | "range";
  node: Node | null;
  /** The list nodes are being appended to now. */
  target: Node[];
}

function parse(src: string): Node[] {
  const root: Node[] = [];
  const stack: Frame[] = [{ kind: "root", node: null, target: root }];
  const top = (): Frame => stack[stack.length - 1];
  for (const seg of splitSegments(src)) {
    if (seg.kind === "text") {
      top().target.push({ kind: "text", text: seg.text });
      continue;
    }
    const body = seg.text.trim();
    if (body.startsWith("/*")) {
      if (!body.endsWith("*/")) throw new TemplateError(`unclosed comment`);
      continue;
    }
    const word = identRe.exec(body)?.[0];
    if (word === "if" || word === "with" || word === "range") {
      const pipe = parseActionPipeline(body, 1, word !== "if");
      const nodeBody: Node[] = [];
      const node: Node =
        word === "range"
          ? { kind: "range", pipe, body: nodeBody, elseBody: null }
          : { kind: word, branches: [{ pipe, body: nodeBody }], elseBody: null };
      top().target.push(node);
      stack.push({ kind: word, node, target: nodeBody });
    } else if (word === "else") {
      const frame = top();
      if (frame.kind === "root") throw new TemplateError(`unexpected {{else}}`);
      const node = frame.node as Node;
      const rest = body.slice(4).trim();
      const chained = identRe.exec(rest)?.[0];
      if (chained === "if" || chained === "with") {
        if (node.kind !== chained || node.elseBody) throw new TemplateError(`unexpected {{else ${chained}}}`);
        const pipe = parseActionPipeline(rest, 1, chained === "with");
        const branchBody: Node[] = [];
        node.branches.push({ pipe, body: branchBody });
        frame.target = branchBody;
      } else {
        if (rest) throw new TemplateError(`unexpected "${rest}" in {{else}}`);
        if ((node.kind === "if" || node.kind === "with" || node.kind === "range") && node.elseBody === null) {
          node.elseBody = [];
          frame.target = node.elseBody;
        } else {
          throw new TemplateError(`more than one {{else}}`);
        }
      }
    } else if (word === "end") {
      if (body !== "end") throw new TemplateError(`unexpected "${body.slice(3).trim()}" in {{end}}`);
      if (stack.length === 1) throw new TemplateError(`unexpected {{end}}`);
      stack.pop();
    } else if (word === "break" || word === "continue") {
      if (!stack.some((f) => f.kind === "range")) throw new TemplateError(`{{${word}}} outside {{range}}`);
      top().target.push({ kind: word });
    } else if (word === "define" || word === "template" || word === "block") {
      throw new TemplateError(`{{${word}}} is not supported`);
    } else {
      top().target.push({ kind: "action", pipe: parseActionPipeline(body, 0, true) });
    }
  }
  if (stack.length > 1) throw new TemplateError(`unexpected EOF: missing {{end}} for {{${top().kind}}}`);
  return root;
}

// ---------------------------------------------------------------------------------------------
// Values

function isObject(v: Value): v is Record<string | symbol, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function typeName(v: Value): string {
  if (v === null || v === undefined) return "<nil>";
  if (Array.isArray(v)) return "[]interface {}";
  if (typeof v === "object") return "map[string]interface {}";
  if (typeof v === "number") return Number.isInteger(v) ? "int" : "float64";
  return typeof v;
}

/** Go's truth: false, 0, "", nil and empty collections are false. */
function truthy(v: Value): boolean {
  if (v === undefined || v === null || v === false || v === 0 || v === "") return false;
  if (Array.isArray(v)) return v.length > 0;
  if (isObject(v) && !(STRICT in v)) return Object.keys(v).length > 0;
  return true;
}

/**
 * Go's fmt %v for JSON-shaped values. A JSON null prints as "[]": docker runs templates on
 * its typed structs, where nearly every nullable field (Cmd, Entrypoint, CapAdd, Ulimits,
 * Binds...) is a nil slice, and fmt prints those as "[]".
 */
export function formatValue(v: Value): string {
  if (v === undefined) return "<no value>";
  if (v === null) return "[]";
  if (typeof v === "string") return v;
  if (typeof v === "number" || typeof v === "boolean" || typeof v === "bigint") return String(v);
  if (Array.isArray(v)) return `[${v.map(formatValue).join(" ")}]`;
  if (typeof v === "object") {
    if (STRICT in v)
      return `{${Object.values(v)
        .filter((x) => typeof x !== "function")
        .map(formatValue)
        .join(" ")}}`;
    const keys = Object.keys(v).sort();
    return `map[${keys.map((k) => `${k}:${formatValue((v as Record<string, unknown>)[k])}`).join(" ")}]`;
  }
  return String(v);
}

function jsonOf(v: Value): string {
  const text = JSON.stringify(v === undefined ? null : v) ?? "null";
  // Docker's row contexts marshal themselves with Go's default HTML escaping ("\u003cnone\u003e").
  if (isObject(v) && STRICT in v)
    return text.replace(/[<>&]/g, (c) => `\\u00${c.charCodeAt(0).toString(16)}`);
  return text;
}

function compare(a: Value, b: Value, op: string): number {
  if (typeof a === "number" && typeof b === "number") return a - b;
  if (typeof a === "string" && typeof b === "string") return a < b ? -1 : a > b ? 1 : 0;
  throw new TemplateError(`error calling ${op}: incompatible types for comparison`);
}

function basicEqual(a: Value, b: Value): boolean {
  if (a === undefined || a === null) return b === undefined || b === null;
  if (typeof a === "object" || typeof b === "object")
    throw new TemplateError("error calling eq: non-comparable types");
  return a === b;
}

// Go's Sprint inserts a space between operands when neither side is a string.
function sprint(args: Value[]): string {
  let out = "";
  args.forEach((a, i) => {
    if (i > 0 && typeof a !== "string" && typeof args[i - 1] !== "string") out += " ";
    out += formatValue(a);
  });
  return out;
}

/** fmt.Sprintf for the verbs people use: %v %s %d %q %t %f %x %%. */
export function sprintf(format: string, args: Value[]): string {
  let argi = 0;
  return (
    format.replace(
      /%([-+ 0#]*)(\d+)?(?:\.(\d+))?([vsdqtfxXeg%])/g,
      (_m, flags: string, width?: string, prec?: string, verb?: string) => {
        if (verb === "%") return "%";
        if (argi >= args.length) return `%!${verb}(MISSING)`;
        const a = args[argi++];
        let s: string;
        switch (verb) {
          case "d":
            s = typeof a === "number" ? String(Math.trunc(a)) : `%!d(${typeName(a)}=${formatValue(a)})`;
            break;
          case "f":
            s =
              typeof a === "number"
                ? a.toFixed(prec === undefined ? 6 : Number(prec))
                : `%!f(${typeName(a)}=${formatValue(a)})`;
            break;
          case "e":
          case "g":
            s =
              typeof a === "number"
                ? verb === "e"
                  ? a.toExponential(prec === undefined ? 6 : Number(prec))
                  : String(a)
                : formatValue(a);
            break;
          case "x":
          case "X":
            s = typeof a === "number" ? a.toString(16) : Buffer.from(formatValue(a)).toString("hex");
            if (verb === "X") s = s.toUpperCase();
            break;
          case "q":
            s = JSON.stringify(formatValue(a));
            break;
          case "t":
            s = typeof a === "boolean" ? String(a) : `%!t(${typeName(a)}=${formatValue(a)})`;
            break;
          default:
            s = formatValue(a);
            if (verb === "s" && prec !== undefined) s = [...s].slice(0, Number(prec)).join("");
        }
        const w = width === undefined ? 0 : Number(width);
        const len = [...s].length;
        if (len < w) {
          const pad = (flags.includes("0") && !flags.includes("-") ? "0" : " ").repeat(w - len);
          s = flags.includes("-") ? s + " ".repeat(w - len) : pad + s;
        }
        return s;
      },
    ) +
    (argi < args.length
      ? `%!(EXTRA ${args
          .slice(argi)
          .map((a) => `${typeName(a)}=${formatValue(a)}`)
          .join(", ")})`
      : "")
  );
}

function str(v: Value, fn: string): string {
  if (typeof v === "string") return v;
  if (typeof v === "number" || typeof v === "boolean") return String(v);
  throw new TemplateError(`error calling ${fn}: wrong type for value; expected string; got ${typeName(v)}`);
}

type Fn = (...args: Value[]) => Value;

const functions: Record<string, Fn> = {
  json: (v) => jsonOf(v),
  join: (list, sep) => {
    if (!Array.isArray(list))
      throw new TemplateError(
        `error calling join: wrong type for value; expected []string; got ${typeName(list)}`,
      );
    return list.map((x) => formatValue(x)).join(str(sep ?? "", "join"));
  },
  split: (s, sep) => str(s, "split").split(str(sep, "split")),
  lower: (s) => str(s, "lower").toLowerCase(),
  upper: (s) => str(s, "upper").toUpperCase(),
  title: (s) =>
    str(s, "title").replace(
      /(^|[^\p{L}\p{N}_'])(\p{L})/gu,
      (_m, pre: string, ch: string) => pre + ch.toUpperCase(),
    ),
  pad: (s, before, after) => " ".repeat(Number(before) || 0) + str(s, "pad") + " ".repeat(Number(after) || 0),
  truncate: (s, n) => [...str(s, "truncate")].slice(0, Number(n)).join(""),
  print: (...args) => sprint(args),
  println: (...args) => args.map(formatValue).join(" ") + "\n",
  printf: (format, ...args) => sprintf(str(format, "printf"), args),
  len: (v) => {
    if (typeof v === "string") return Buffer.byteLength(v);
    if (Array.isArray(v)) return v.length;
    if (isObject(v)) return Object.keys(v).length;
    throw new TemplateError(`error calling len: len of type ${typeName(v)}`);
  },
  index: (v, ...keys) => {
    let cur = v;
    for (const k of keys) {
      if (Array.isArray(cur) || typeof cur === "string") {
        const i = Number(k);
        if (!Number.isInteger(i) || i < 0 || i >= cur.length)
          throw new TemplateError(`error calling index: index out of range: ${formatValue(k)}`);
        cur = typeof cur === "string" ? cur.charCodeAt(i) : cur[i];
      } else if (isObject(cur)) {
        // A missing key gives the element type's zero value; in Docker's maps that is "".
        const key = formatValue(k);
        cur = Object.prototype.hasOwnProperty.call(cur, key) ? cur[key] : "";
      } else if (cur === null || cur === undefined) {
        throw new TemplateError(`error calling index: index of untyped nil`);
      } else {
        throw new TemplateError(`error calling index: can't index item of type ${typeName(cur)}`);
      }
    }
    return cur;
  },
  slice: (v, ...idx) => {
    const [i, j] = idx.map(Number);
    if (typeof v === "string" || Array.isArray(v)) return v.slice(i ?? 0, j ?? v.length);
    throw new TemplateError(`error calling slice: can't slice item of type ${typeName(v)}`);
  },
  not: (v) => !truthy(v),
  and: (...args) => {
    for (const a of args) if (!truthy(a)) return a;
    return args[args.length - 1];
  },
  or: (...args) => {
    for (const a of args) if (truthy(a)) return a;
    return args[args.length - 1];
  },
  eq: (a, ...rest) => {
    if (rest.length === 0) throw new TemplateError("error calling eq: missing argument for comparison");
    return rest.some((b) => basicEqual(a, b));
  },
  ne: (a, b) => !basicEqual(a, b),
  lt: (a, b) => compare(a, b, "lt") < 0,
  le: (a, b) => compare(a, b, "le") <= 0,
  gt: (a, b) => compare(a, b, "gt") > 0,
  ge: (a, b) => compare(a, b, "ge") >= 0,
  urlquery: (...args) => encodeURIComponent(sprint(args)),
};

// ---------------------------------------------------------------------------------------------
// Execution

class BreakSignal {}
class ContinueSignal {}

interface Scope {
  vars: { name: string; value: Value }[];
}

function lookupVar(scope: Scope, name: string): Value {
  for (let i = scope.vars.length - 1; i >= 0; i--)
    if (scope.vars[i].name === name) return scope.vars[i].value;
  throw new TemplateError(`undefined variable: ${name}`);
}

function fieldOf(receiver: Value, name: string, args: Value[], isLast: boolean, path: string): Value {
  if (receiver === null || receiver === undefined) throw new TemplateError(`nil pointer evaluating ${path}`);
  if (!isObject(receiver))
    throw new TemplateError(`can't evaluate field ${name} in type ${typeName(receiver)}`);
  const strict = STRICT in receiver;
  if (strict && !(name in receiver))
    throw new TemplateError(`can't evaluate field ${name} in type ${strictName(receiver)}`);
  const v = Object.prototype.hasOwnProperty.call(receiver, name) || strict ? receiver[name] : undefined;
  if (typeof v === "function") return (v as Fn).call(receiver, ...(isLast ? args : []));
  if (isLast && args.length > 0)
    throw new TemplateError(`${name} has arguments but cannot be invoked as function`);
  return v;
}

function strictName(v: Record<string | symbol, unknown>): string {
  const n = v[STRICT];
  return typeof n === "string" ? n : "struct";
}

function walk(receiver: Value, names: string[], args: Value[], label: string): Value {
  let cur = receiver;
  names.forEach((name, i) => {
    cur = fieldOf(cur, name, args, i === names.length - 1, `${label}.${names.slice(0, i + 1).join(".")}`);
  });
  return cur;
}

class Executor {
  out = "";

  evalOperand(op: Operand, dot: Value, scope: Scope, args: Value[]): Value {
    switch (op.kind) {
      case "field":
        return op.names.length === 0 ? dot : walk(dot, op.names, args, "");
      case "var": {
        const v = lookupVar(scope, op.name);
        return op.names.length === 0 ? v : walk(v, op.names, args, op.name);
      }
      case "pipe": {
        const v = this.evalPipeline(op.pipe, dot, scope);
        return op.names.length === 0 ? v : walk(v, op.names, args, "");
      }
      case "literal":
        return op.value;
      case "ident": {
        const fn = functions[op.name];
        if (!fn) throw new TemplateError(`function "${op.name}" not defined`);
        return fn(...args);
      }
    }
  }

  evalCommand(cmd: Command, dot: Value, scope: Scope, final: Value[]): Value {
    const [first, ...rest] = cmd.operands;
    const args = rest.map((a) => this.evalOperand(a, dot, scope, []));
    args.push(...final);
    const callable =
      first.kind === "ident" ||
      ((first.kind === "field" || first.kind === "var" || first.kind === "pipe") && first.names.length > 0);
    if (!callable && args.length > 0)
      throw new TemplateError(`can't give argument to non-function ${describe(first)}`);
    return this.evalOperand(first, dot, scope, args);
  }

  evalPipeline(pipe: Pipeline, dot: Value, scope: Scope): Value {
    let value: Value;
    pipe.commands.forEach((cmd, i) => {
      value = this.evalCommand(cmd, dot, scope, i === 0 ? [] : [value]);
    });
    if (pipe.decl.length > 0) {
      const name = pipe.decl[pipe.decl.length - 1];
      if (pipe.assign) {
        const slot = [...scope.vars].reverse().find((v) => v.name === name);
        if (!slot) throw new TemplateError(`undefined variable: ${name}`);
        slot.value = value;
      } else {
        scope.vars.push({ name, value });
      }
    }
    return value;
  }

  run(nodes: Node[], dot: Value, scope: Scope): void {
    for (const node of nodes) {
      switch (node.kind) {
        case "text":
          this.out += node.text;
          break;
        case "action": {
          const v = this.evalPipeline(node.pipe, dot, scope);
          if (node.pipe.decl.length === 0) this.out += formatValue(v);
          break;
        }
        case "if":
        case "with": {
          const mark = scope.vars.length;
          let done = false;
          for (const branch of node.branches) {
            const v = this.evalPipeline(branch.pipe, dot, scope);
            if (truthy(v)) {
              this.run(branch.body, node.kind === "with" ? v : dot, scope);
              done = true;
              break;
            }
          }
          if (!done && node.elseBody) this.run(node.elseBody, dot, scope);
          scope.vars.length = mark;
          break;
        }
        case "range":
          this.runRange(node, dot, scope);
          break;
        case "break":
          throw new BreakSignal();
        case "continue":
          throw new ContinueSignal();
      }
    }
  }

  runRange(node: Extract<Node, { kind: "range" }>, dot: Value, scope: Scope): void {
    const mark = scope.vars.length;
    const decl = node.pipe.decl;
    const plain: Pipeline = { ...node.pipe, decl: [] };
    const v = this.evalPipeline(plain, dot, scope);
    let items: [Value, Value][];
    if (Array.isArray(v)) items = v.map((x, i) => [i, x]);
    else if (isObject(v))
      items = Object.keys(v)
        .sort()
        .map((k) => [k, v[k]]);
    else if (typeof v === "number" && Number.isInteger(v))
      items = Array.from({ length: Math.max(0, v) }, (_x, i) => [i, i]);
    else if (v === null || v === undefined) items = [];
    else throw new TemplateError(`range can't iterate over ${formatValue(v)}`);
    if (items.length === 0) {
      if (node.elseBody) this.run(node.elseBody, dot, scope);
      scope.vars.length = mark;
      return;
    }
    for (const [key, elem] of items) {
      const inner = scope.vars.length;
      if (decl.length === 1) scope.vars.push({ name: decl[0], value: elem });
      if (decl.length === 2) scope.vars.push({ name: decl[0], value: key }, { name: decl[1], value: elem });
      try {
        this.run(node.body, elem, scope);
      } catch (e) {
        if (e instanceof BreakSignal) {
          scope.vars.length = inner;
          break;
        }
        if (!(e instanceof ContinueSignal)) throw e;
      }
      scope.vars.length = inner;
    }
    scope.vars.length = mark;
  }
}

function describe(op: Operand): string {
  if (op.kind === "literal") return formatValue(op.value);
  if (op.kind === "field") return op.names.length ? "." + op.names.join(".") : ".";
  if (op.kind === "var") return op.name;
  return "(pipeline)";
}

interface Template {
  execute(data: Value): string;
}

/** Parse once, execute per object. Throws TemplateError with a message that names the problem. */
export function compileTemplate(src: string): Template {
  let nodes: Node[];
  try {
    nodes = parse(src);
  } catch (e) {
    if (e instanceof TemplateError) e.message = `template parsing error: ${e.message}`;
    throw e;
  }
  return {
    execute(data: Value): string {
      const ex = new Executor();
      ex.run(nodes, data, { vars: [{ name: "$", value: data }] });
      return ex.out;
    },
  };
}

export function renderTemplate(src: string, data: Value): string {
  return compileTemplate(src).execute(data);
}

// Docker's Dockerfile word rules: how an instruction's text splits into words, and how a word is
// expanded ($VAR, ${VAR:-default}, ${VAR:+alt}, quotes, the escape character). A port of the
// classic builder's (buildkit's frontend/dockerfile/shell) lexer, so substitution behaves as in
// `docker build`: unset variables expand to "", single quotes are literal, double quotes keep
// everything but "$", the escape character escapes one character.
import { invalid } from "../../../shared/errors.js";

export type Env = ReadonlyMap<string, string>;

class Lexer {
  private pos = 0;
  private readonly chars: string[];

  constructor(
    text: string,
    private readonly env: Env,
    private readonly escape: string,
  ) {
    this.chars = [...text];
  }

  private peek(): string | undefined {
    return this.chars[this.pos];
  }

  private next(): string | undefined {
    return this.chars[this.pos++];
  }

  /** The whole word, or up to (and consuming) `stop`. */
  process(stop?: string): string {
    let out = "";
    while (this.peek() !== undefined) {
      const ch = this.peek() as string;
      if (stop !== undefined && ch === stop) {
        this.next();
        return out;
      }
      if (ch === "'") out += this.singleQuote();
      else if (ch === '"') out += this.doubleQuote();
      else if (ch === "$") out += this.dollar();
      else {
        this.next();
        if (ch === this.escape) {
          const escaped = this.next();
          if (escaped === undefined) break; // an escape at the very end is dropped
          out += escaped;
        } else out += ch;
      }
    }
    if (stop !== undefined) throw new Error(`unexpected end of statement while looking for matching ${stop}`);
    return out;
  }

  private singleQuote(): string {
    this.next();
    let out = "";
    for (;;) {
      const ch = this.next();
      if (ch === undefined)
        throw new Error("unexpected end of statement while looking for matching single-quote");
      if (ch === "'") return out;
      out += ch;
    }
  }

  private doubleQuote(): string {
    this.next();
    let out = "";
    for (;;) {
      const ch = this.peek();
      if (ch === undefined)
        throw new Error("unexpected end of statement while looking for matching double-quote");
      if (ch === '"') {
        this.next();
        return out;
      }
      if (ch === "$") {
        out += this.dollar();
        continue;
      }
      this.next();
      if (ch === this.escape) {
        const after = this.peek();
        if (after === undefined) continue;
        if (after === '"' || after === "$" || after === this.escape) {
          out += this.next();
          continue;
        }
      }
      out += ch;
    }
  }

  private name(): string {
    let name = "";
    for (;;) {
      const ch = this.peek();
      if (ch === undefined) return name;
      if (name === "" && /[0-9]/.test(ch)) {
        while (this.peek() !== undefined && /[0-9]/.test(this.peek() as string)) name += this.next();
        return name;
      }
      if (name === "" && "@*#?-$!".includes(ch)) return this.next() as string;
      if (!/[\p{L}\p{N}_]/u.test(ch)) return name;
      name += this.next();
    }
  }

  private dollar(): string {
    this.next();
    if (this.peek() !== "{") {
      const name = this.name();
      return name === "" ? "$" : (this.env.get(name) ?? "");
    }
    this.next();
    const first = this.peek();
    if (first === undefined) throw new Error("syntax error: missing '}'");
    if (first === "{" || first === "}" || first === ":") throw new Error("syntax error: bad substitution");
    const name = this.name();
    const ch = this.next();
    if (ch === "}") return this.env.get(name) ?? "";
    if (ch === undefined) throw new Error("syntax error: missing '}'");
    let colon = false;
    let modifier = ch;
    if (ch === ":") {
      colon = true;
      modifier = this.next() ?? "";
    }
    if (modifier !== "-" && modifier !== "+" && modifier !== "?") {
      if (colon) throw new Error(`unsupported modifier (${modifier}) in substitution`);
      throw new Error("missing ':' in substitution");
    }
    const word = this.process("}");
    const value = this.env.get(name);
    const unset = value === undefined || (colon && value === "");
    switch (modifier) {
      case "-":
        return unset ? word : (value as string);
      case "+":
        return unset ? "" : word;
      default:
        if (unset) throw new Error(`${name}: ${word || "is not allowed to be unset"}`);
        return value as string;
    }
  }
}

/** Expand variables in one word and remove its quotes, as the builder does for FROM, COPY, ENV, ... */
export function expandWord(word: string, env: Env, escape = "\\"): string {
  return new Lexer(word, env, escape).process();
}

/**
 * Split on whitespace outside quotes, keeping quotes and escapes in the words (Docker's
 * parseWords, used for ENV, LABEL and ARG): quote removal happens later in expandWord.
 */
export function splitQuotedWords(text: string, escape = "\\"): string[] {
  const chars = [...text];
  const words: string[] = [];
  let word = "";
  let phase: "space" | "word" | "quote" = "space";
  let quote = "";
  let blankOk = false;
  for (let i = 0; i <= chars.length; i++) {
    const end = i === chars.length;
    let ch = end ? "" : chars[i];
    if (phase === "space") {
      if (end) break;
      if (/\s/.test(ch)) continue;
      phase = "word";
    }
    if (end) {
      if (blankOk || word.length > 0) words.push(word);
      break;
    }
    if (phase === "word") {
      if (/\s/.test(ch)) {
        phase = "space";
        if (blankOk || word.length > 0) words.push(word);
        word = "";
        blankOk = false;
        continue;
      }
      if (ch === "'" || ch === '"') {
        quote = ch;
        blankOk = true;
        phase = "quote";
      }
      if (ch === escape) {
        if (i + 1 === chars.length) continue;
        word += ch;
        ch = chars[++i];
      }
      word += ch;
      continue;
    }
    // in a quote
    if (ch === quote) phase = "word";
    if (ch === escape && quote !== "'") {
      if (i + 1 === chars.length) {
        phase = "word";
        continue;
      }
      word += ch;
      ch = chars[++i];
    }
    word += ch;
  }
  return words;
}

/** Split on whitespace only (Docker's parseStringsWhitespaceDelimited: COPY, ADD, EXPOSE, FROM, VOLUME). */
export function splitWhitespace(text: string): string[] {
  return text.split(/[\t\v\f\r \n]+/).filter((w) => w !== "");
}

/** The JSON (exec) form of an instruction's arguments, or undefined for the shell form. */
export function jsonForm(text: string): string[] | undefined {
  const t = text.trim();
  if (!t.startsWith("[")) return undefined;
  let v: unknown;
  try {
    v = JSON.parse(t);
  } catch {
    return undefined; // like Docker: text that only looks like JSON is the shell form
  }
  if (!Array.isArray(v) || v.some((x) => typeof x !== "string")) return undefined;
  return v as string[];
}

/**
 * `key=value` pairs of ENV, LABEL (and the legacy `ENV key value with spaces` form). The pairs
 * still carry their quotes; expand both halves with expandWord.
 */
export function nameValuePairs(text: string, keyword: string, escape = "\\"): Array<[string, string]> {
  const words = splitQuotedWords(text, escape);
  if (words.length === 0) throw invalid(`${keyword} requires at least one argument`);
  if (!words[0].includes("=")) {
    // Legacy form: the first word is the name, the rest of the line its value.
    const m = /^\s*(\S+)\s+([\s\S]*?)\s*$/.exec(text);
    if (!m) throw invalid(`${keyword} must have two arguments: use ${keyword} name=value`);
    return [[m[1], m[2]]];
  }
  return words.map((w) => {
    const eq = w.indexOf("=");
    if (eq < 0) throw invalid(`Syntax error - can't find = in "${w}". Must be of the form: name=value`);
    if (eq === 0) throw invalid(`${keyword} names can not be blank`);
    return [w.slice(0, eq), w.slice(eq + 1)];
  });
}

/** ARG's `name` or `name=default` words (several per line allowed). */
export function argDeclarations(text: string, escape = "\\"): Array<{ name: string; value?: string }> {
  const words = splitQuotedWords(text, escape);
  if (words.length === 0) throw invalid("ARG requires at least one argument");
  return words.map((w) => {
    const eq = w.indexOf("=");
    if (eq === 0) throw invalid("ARG names can not be blank");
    return eq < 0 ? { name: w } : { name: w.slice(0, eq), value: w.slice(eq + 1) };
  });
}

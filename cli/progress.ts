// Docker's JSON-lines progress (pull, push, load, import): on a terminal, one line per layer
// id redrawn in place with a bar; elsewhere, plain lines and no bars (as the docker CLI does).

import type { Readable } from "node:stream";
import type { JsonMessage } from "./api-types.js";
import { dockerSize } from "../shared/human.js";

// Docker draws progress sizes with go-units HumanSize: four significant digits.
const humanSize = (n: number): string => dockerSize(n, 4);
import { CliError } from "./errors.js";

export interface ProgressOutput {
  write(s: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

/** The bar docker draws: `[=====>      ]  1.2MB/4.3MB` (without the sizes when `counts` is false). */
export function progressBar(current: number, total: number, width = 50, counts = true): string {
  if (total <= 0) return humanSize(current);
  const ratio = Math.min(1, Math.max(0, current / total));
  const filled = Math.floor(ratio * width);
  const arrow = filled < width ? ">" : "";
  const bar = `[${"=".repeat(filled)}${arrow}${" ".repeat(Math.max(0, width - filled - arrow.length))}]`;
  return counts ? `${bar} ${humanSize(current).padStart(8)}/${humanSize(total)}` : bar;
}

function progressText(m: JsonMessage): string {
  const d = m.progressDetail;
  if (d && typeof d.current === "number" && typeof d.total === "number" && d.total > 0)
    return progressBar(d.current, d.total);
  if (d && typeof d.current === "number" && d.current > 0) return humanSize(d.current);
  return m.progress ?? "";
}

function hasProgress(m: JsonMessage): boolean {
  return Boolean(m.progress) || (m.progressDetail !== undefined && Object.keys(m.progressDetail).length > 0);
}

export class ProgressRenderer {
  private readonly ids = new Map<string, number>();
  private lines = 0;
  /** aux payloads (e.g. a build's image id) for the caller. */
  readonly aux: unknown[] = [];

  constructor(private readonly out: ProgressOutput) {}

  private get tty(): boolean {
    return Boolean(this.out.isTTY);
  }

  /** Show one message; throws CliError for an error message, as the stream failed there. */
  handle(m: JsonMessage): void {
    if (m.error || m.errorDetail?.message)
      // A build's failing RUN carries its exit code; the docker CLI exits with it.
      throw new CliError(m.errorDetail?.message || m.error || "unknown error", m.errorDetail?.code || 1);
    if (m.aux !== undefined) {
      this.aux.push(m.aux);
      if (!m.status && !m.stream) return;
    }
    if (m.stream !== undefined) {
      this.out.write(m.stream);
      // Free text breaks the in-place layer lines: start a fresh block below it.
      if (this.tty) {
        this.ids.clear();
        this.lines = 0;
      }
      return;
    }
    const progress = hasProgress(m);
    if (!this.tty && progress) return;
    const text = `${m.id ? `${m.id}: ` : ""}${m.status ?? ""}${progress ? ` ${progressText(m)}` : ""}`;
    if (!this.tty || !m.id) {
      this.out.write(`${text}\n`);
      return;
    }
    let line = this.ids.get(m.id);
    if (line === undefined) {
      line = this.lines++;
      this.ids.set(m.id, line);
      this.out.write(`${text}\n`);
      return;
    }
    const up = this.lines - line;
    const width = this.out.columns ?? 0;
    const shown = width > 0 ? [...text].slice(0, width - 1).join("") : text;
    // Up to the layer's line, clear it, draw, and back down to below the block.
    this.out.write(`\x1b[${up}A\r\x1b[2K${shown}\x1b[${up}B\r`);
  }

  /** Read a JSON-lines body to its end. */
  async consume(body: Readable): Promise<void> {
    let buffered = "";
    for await (const chunk of body) {
      buffered += (chunk as Buffer).toString("utf8");
      let nl: number;
      while ((nl = buffered.indexOf("\n")) >= 0) {
        const line = buffered.slice(0, nl).trim();
        buffered = buffered.slice(nl + 1);
        if (line) this.handle(parseLine(line));
      }
    }
    if (buffered.trim()) this.handle(parseLine(buffered.trim()));
  }
}

function parseLine(line: string): JsonMessage {
  try {
    return JSON.parse(line) as JsonMessage;
  } catch {
    return { stream: `${line}\n` };
  }
}

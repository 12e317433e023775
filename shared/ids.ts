import { randomBytes } from "node:crypto";

/** A 64-hex-digit object id, as Docker uses for containers. */
export function newId(): string {
  return randomBytes(32).toString("hex");
}

export function shortId(id: string): string {
  return id.replace(/^sha256:/, "").slice(0, 12);
}

const adjectives = [
  "brave",
  "calm",
  "eager",
  "fancy",
  "gentle",
  "happy",
  "jolly",
  "keen",
  "lucid",
  "merry",
  "nimble",
  "quiet",
  "rapid",
  "sharp",
  "tidy",
  "vivid",
  "witty",
  "zesty",
];
const nouns = [
  "anchovy",
  "barracuda",
  "carp",
  "dorado",
  "eel",
  "flounder",
  "grouper",
  "herring",
  "ide",
  "koi",
  "mackerel",
  "perch",
  "roach",
  "salmon",
  "tuna",
  "wrasse",
];

/** A readable random name like Docker's `brave_herring`, for containers created without --name. */
export function randomName(): string {
  const pick = <T>(xs: T[]): T => xs[randomBytes(1)[0] % xs.length];
  return `${pick(adjectives)}_${pick(nouns)}`;
}

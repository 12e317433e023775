// Placement constraints in Docker's syntax: `node.role==manager`, `node.labels.zone!=east`,
// `node.hostname==web1`, `node.id==...`, `node.platform.os==linux`, `node.platform.arch==x86_64`.
// The control API checks them at create and update, the scheduler places by them, the
// orchestrator picks a global service's nodes by them.
import { invalid } from "../../shared/errors.js";
import type { NodeObject } from "../store/types.js";

export interface Constraint {
  key: string;
  equal: boolean;
  value: string;
  /** The text as the user wrote it, for messages. */
  text: string;
}

const KEYS =
  /^(node\.id|node\.hostname|node\.role|node\.platform\.os|node\.platform\.arch|node\.labels\.[^=!\s]+|engine\.labels\.[^=!\s]+)$/;

export function parseConstraint(text: string): Constraint {
  const m = /^\s*([^=!\s]+)\s*(==|!=)\s*(.+?)\s*$/.exec(text);
  if (!m) {
    throw invalid(
      `invalid constraint "${text}": use KEY==VALUE or KEY!=VALUE, for example node.role==manager or node.labels.zone!=east`,
    );
  }
  const [, key, op, value] = m;
  if (!KEYS.test(key)) {
    throw invalid(
      `invalid constraint "${text}": unknown key ${key}; use node.id, node.hostname, node.role, node.platform.os, node.platform.arch or node.labels.<name>`,
    );
  }
  return { key, equal: op === "==", value, text: text.trim() };
}

function valueOf(node: NodeObject, key: string): string | undefined {
  switch (key) {
    case "node.id":
      return node.ID;
    case "node.hostname":
      return node.Description.Hostname;
    case "node.role":
      return node.Spec.Role;
    case "node.platform.os":
      return node.Description.Platform.OS;
    case "node.platform.arch":
      return node.Description.Platform.Architecture;
    default:
      if (key.startsWith("node.labels.")) return node.Spec.Labels?.[key.slice("node.labels.".length)];
      return undefined;
  }
}

/** The constraints a task spec or a service's TaskTemplate names (Placement.Constraints), parsed. */
export function constraintsOf(spec: unknown): Constraint[] {
  const texts = (spec as { Placement?: { Constraints?: string[] } } | undefined)?.Placement?.Constraints;
  return (texts ?? []).map(parseConstraint);
}

/** Whether `node` satisfies every one of `constraints`. */
export function satisfiesAll(node: NodeObject, constraints: Constraint[]): boolean {
  return constraints.every((c) => satisfies(node, c));
}

/** Values compare case-insensitively, as swarmkit's constraint matcher does (strings.EqualFold). */
function satisfies(node: NodeObject, c: Constraint): boolean {
  const actual = valueOf(node, c.key);
  const same = actual !== undefined && actual.toLowerCase() === c.value.toLowerCase();
  return c.equal ? same : !same;
}

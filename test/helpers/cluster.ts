// What the cluster tests share: waiting for a condition, and a service's tasks as the API
// gives them.
import { setTimeout as sleep } from "node:timers/promises";
import { api } from "./daemon.js";

/**
 * Poll `fn` until it returns something other than undefined; fail after `ms`, naming `what`
 * and, when `saw` is given, what the last poll saw (so a CI failure says which half was missing).
 */
export async function until<T>(
  what: string,
  fn: () => Promise<T | undefined>,
  ms = 20_000,
  saw?: () => string,
): Promise<T> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    const v = await fn();
    if (v !== undefined) return v;
    await sleep(200);
  }
  throw new Error(`timed out waiting for ${what}${saw ? `; last saw ${saw()}` : ""}`);
}

export interface Task {
  ID: string;
  Slot: number;
  DesiredState: string;
  Status: { State: string; Message: string; Err?: string; ContainerStatus?: { ContainerID: string } };
}

export async function tasksOf(socket: string, service: string): Promise<Task[]> {
  const filters = encodeURIComponent(JSON.stringify({ service: [service] }));
  return (await api(socket, "GET", `/tasks?filters=${filters}`)).json<Task[]>();
}

/** Tasks that run and are meant to. */
export async function runningTasks(socket: string, service: string): Promise<Task[]> {
  return (await tasksOf(socket, service)).filter(
    (t) => t.Status.State === "running" && t.DesiredState === "running",
  );
}

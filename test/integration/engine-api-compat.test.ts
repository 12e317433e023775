// docs/engine-api-compat.md is true: it is what the generator makes of the committed endpoint
// list (Docker Engine API 1.44) and status file, and a live shoald answers every endpoint the
// way the status file says (a supported/partly one reaches a route of shoal's, a refused one is
// a 4xx naming itself).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readFile } from "node:fs/promises";
import { api, startDaemon, type TestDaemon } from "../helpers/daemon.js";
import {
  checkStatuses,
  docFile,
  keyOf,
  loadInputs,
  renderCompatTable,
  type Endpoint,
  type EndpointStatus,
} from "../tools/compat-table.mjs";

let d: TestDaemon;
let endpoints: Endpoint[];
let statuses: Record<string, EndpointStatus>;
const GENERIC = "shoal does not implement";
const ID = "shoal-compat-nosuch";

beforeAll(async () => {
  ({ endpoints, statuses } = await loadInputs());
  d = await startDaemon();
});
afterAll(async () => {
  await d?.destroy();
});

interface Answer {
  status: number;
  message: string;
}

/** One request; a path parameter becomes an id nothing has, so no probe changes anything. */
async function probe(e: Endpoint, s: EndpointStatus | undefined): Promise<Answer> {
  // HEAD answers carry no body: judge them by the GET route of the same path.
  const method = e.method === "HEAD" && e.path !== "/_ping" ? "GET" : e.method;
  let path = e.path.replace(/\{[^}]+\}/g, ID);
  if (s?.probe?.query) path += `?${s.probe.query}`;
  const r = await api(d.socket, method, path, s?.probe?.body);
  let message: string;
  try {
    message = String(r.json<{ message?: unknown }>().message ?? "");
  } catch {
    message = r.body.toString("utf8").slice(0, 200);
  }
  return { status: r.status, message };
}

describe("the Engine API compatibility table", () => {
  it("has one valid row per Engine API 1.44 endpoint", () => {
    expect(endpoints.length).toBe(107);
    expect(new Set(endpoints.map(keyOf)).size).toBe(endpoints.length);
    expect(checkStatuses(endpoints, statuses)).toEqual([]);
  });

  it("docs/engine-api-compat.md is what `npm run compat-table` writes", async () => {
    const doc = await readFile(docFile, "utf8");
    expect(doc, "docs/engine-api-compat.md is out of date: run npm run compat-table").toBe(
      renderCompatTable(endpoints, statuses),
    );
  });

  it("a live shoald answers every endpoint as the table says", async () => {
    const wrong: string[] = [];
    for (const e of endpoints) {
      const s = statuses[keyOf(e)];
      const a = await probe(e, s);
      const generic = a.status === 404 && a.message.includes(GENERIC);
      const concrete = e.path.replace(/\{[^}]+\}/g, ID);
      if (s?.status === "refused") {
        if (a.status < 400 || a.status >= 500 || !a.message.includes(concrete))
          wrong.push(`${keyOf(e)} is marked refused but answered ${a.status} ${a.message}`);
      } else if (generic) {
        wrong.push(`${keyOf(e)} is marked ${s?.status} but no route serves it: ${a.message}`);
      }
    }
    expect(wrong).toEqual([]);
  });

  it("an unknown route is a 404 naming the endpoint and saying shoal does not implement it", async () => {
    const r = await api(d.socket, "GET", "/v1.44/plugins?all=1");
    expect(r.status).toBe(404);
    expect(r.json<{ message: string }>().message).toBe(
      "page not found: shoal does not implement GET /plugins (it is not part of the shoal Engine API; see docs/engine-api-compat.md)",
    );
  });
});

// What a Forward call may run on a node's own socket: the cluster API (a follower's write to the
// leader) and a task's container logs (a manager reading them where the task runs); never a
// membership change, a container create or anything else of the node's own engine, however the
// path is spelled.
import { describe, expect, it } from "vitest";
import { forwardablePath } from "../../daemon/cluster/forwardable.js";

describe("forwardablePath", () => {
  it("lets the cluster API and task logs through", () => {
    const ok: Array<[string, string]> = [
      ["GET", "/swarm"],
      ["POST", "/swarm/update?version=3&rotateWorkerToken=true"],
      ["GET", "/nodes"],
      ["POST", "/nodes/n1/update?version=2"],
      ["DELETE", "/nodes/n1?force=1"],
      ["POST", "/services/create"],
      ["POST", "/v1.44/services/web/update?version=5"],
      ["GET", "/services/web/logs?follow=1&tail=all"],
      ["GET", "/tasks?filters=%7B%22service%22%3A%5B%22web%22%5D%7D"],
      ["GET", "/containers/abc123/logs?stdout=1&follow=1"],
      ["GET", "/services/"],
    ];
    for (const [m, u] of ok) expect(forwardablePath(m, u), `${m} ${u}`).toBe(true);
  });

  it("refuses membership, the engine's own writes, other methods and oddly spelled paths", () => {
    const refused: Array<[string, string]> = [
      ["POST", "/swarm/leave?force=true"],
      ["POST", "/v1.44/swarm/leave?force=true"],
      ["POST", "/swarm/init"],
      ["POST", "/swarm/join"],
      ["POST", "/swarm/unlock"],
      ["POST", "/containers/create"],
      ["POST", "/containers/abc/exec"],
      ["POST", "/containers/abc/logs"],
      ["GET", "/containers/json"],
      ["POST", "/networks/create"],
      ["POST", "/networks/n/connect"],
      ["GET", "/networks"],
      ["POST", "/images/create?fromImage=x"],
      ["POST", "/volumes/create"],
      ["PUT", "/services/web"],
      ["GET", "/services/../containers/json"],
      ["GET", "/services/%2e%2e/containers/json"],
      ["GET", "/services/a%2fb"],
      ["GET", "//services"],
      ["GET", "/services/web\r\nX-Injected: 1"],
      ["GET", "/services/web logs"],
      ["GET", "services"],
      ["GET", "/services/%zz"],
      ["POST", "/swarm/update/../leave"],
      ["G ET", "/services"],
    ];
    for (const [m, u] of refused) expect(forwardablePath(m, u), `${m} ${u}`).toBe(false);
  });
});

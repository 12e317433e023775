// swarm init and join bodies as the docker CLI sends them: zero values pass, every option shoal
// would not act on is refused by the flag that set it.
import { describe, expect, it } from "vitest";
import { checkInitRequest, checkJoinRequest } from "../../api/routes/swarm-requests.js";

// Captured from `docker swarm init` (docker CLI 28) with no options.
const plainInit = {
  ListenAddr: "0.0.0.0:2377",
  AdvertiseAddr: "",
  DataPathAddr: "",
  DataPathPort: 0,
  ForceNewCluster: false,
  Spec: {
    Labels: null,
    Orchestration: {},
    Raft: { ElectionTick: 0, HeartbeatTick: 0 },
    Dispatcher: {},
    CAConfig: {},
    TaskDefaults: {},
    EncryptionConfig: { AutoLockManagers: false },
  },
  AutoLockManagers: false,
  Availability: "",
  DefaultAddrPool: [],
  SubnetSize: 24,
};

describe("swarm init request", () => {
  it("keeps what shoal acts on and drops the CLI's zero values", () => {
    expect(checkInitRequest(plainInit)).toEqual({
      ListenAddr: "0.0.0.0:2377",
      AdvertiseAddr: undefined,
      Spec: undefined,
    });
    const withLimit = {
      ...plainInit,
      Spec: { ...plainInit.Spec, Orchestration: { TaskHistoryRetentionLimit: 3 } },
    };
    expect(checkInitRequest(withLimit).Spec).toEqual({ Orchestration: { TaskHistoryRetentionLimit: 3 } });
    expect(checkInitRequest(undefined)).toEqual({
      ListenAddr: undefined,
      AdvertiseAddr: undefined,
      Spec: undefined,
    });
  });

  it.each([
    [{ DefaultAddrPool: ["10.20.0.0/16"] }, "--default-addr-pool"],
    [{ SubnetSize: 26 }, "--default-addr-pool-mask-length"],
    [{ DataPathPort: 4790 }, "--data-path-port 4790"],
    [{ DataPathAddr: "10.0.0.1" }, "--data-path-addr"],
    [{ ForceNewCluster: true }, "--force-new-cluster"],
    [{ AutoLockManagers: true }, "--autolock"],
    [{ Availability: "drain" }, "--availability drain"],
    [{ Bogus: 1 }, "unknown field Bogus"],
  ])("refuses %j naming it", (extra, named) => {
    expect(() => checkInitRequest({ ...plainInit, ...extra })).toThrow(named);
  });

  it("accepts the data path port overlay networks use", () => {
    expect(() => checkInitRequest({ ...plainInit, DataPathPort: 4789 })).not.toThrow();
  });
});

describe("swarm join request", () => {
  const plainJoin = {
    ListenAddr: "0.0.0.0:2377",
    AdvertiseAddr: "",
    DataPathAddr: "",
    RemoteAddrs: ["10.0.0.1:2377"],
    JoinToken: "SWMTKN-1-x",
    Availability: "active",
  };
  it("passes the fields shoal uses", () => {
    expect(checkJoinRequest(plainJoin)).toEqual(plainJoin);
  });
  it.each([
    [{ DataPathAddr: "10.0.0.2" }, "--data-path-addr"],
    [{ Availability: "pause" }, "--availability pause"],
    [{ Extra: true }, "unknown field Extra"],
  ])("refuses %j naming it", (extra, named) => {
    expect(() => checkJoinRequest({ ...plainJoin, ...extra })).toThrow(named);
  });
});

import { describe, expect, it } from "vitest";
import * as pb from "../../proto/gen/raft.js";
import {
  ProtoConversionError,
  confChangeFromProto,
  confChangeToProto,
  hardStateFromProto,
  hardStateToProto,
  messageFromProto,
  messageToProto,
  snapshotFromProto,
  snapshotToProto,
} from "../../manager/raft/transport/convert.js";
import type { ConfChange, Message, MessageType, Snapshot } from "../../manager/raft/core/types.js";

const ALL_TYPES: MessageType[] = [
  "hup",
  "beat",
  "prop",
  "app",
  "app_resp",
  "vote",
  "vote_resp",
  "pre_vote",
  "pre_vote_resp",
  "snap",
  "snap_status",
  "unreachable",
  "heartbeat",
  "heartbeat_resp",
  "read_index",
  "read_index_resp",
  "transfer_leader",
  "timeout_now",
  "check_quorum",
];

function zeroMessage(type: MessageType): Message {
  return {
    type,
    to: 0,
    from: 0,
    term: 0,
    logTerm: 0,
    index: 0,
    entries: [],
    commit: 0,
    reject: false,
    rejectHint: 0,
    context: new Uint8Array(0),
  };
}

/** Through the real wire encoding, not just the object conversion. */
function wire(m: Message): Message {
  const bytes = pb.RaftMessage.encode(messageToProto(m)).finish();
  return messageFromProto(pb.RaftMessage.decode(bytes));
}

describe("raft proto conversion", () => {
  it("round-trips every message type with all-zero fields", () => {
    for (const type of ALL_TYPES) {
      const m = zeroMessage(type);
      const back = wire(m);
      expect(back).toStrictEqual(m);
      expect(back.context).toBeInstanceOf(Uint8Array);
      expect(back.context.byteLength).toBe(0);
      expect("snapshot" in back).toBe(false);
    }
  });

  it("round-trips a full app message: entries of both kinds, empty and non-empty data, large numbers", () => {
    const m: Message = {
      type: "app",
      to: 3,
      from: 1,
      term: 7,
      logTerm: 6,
      index: Number.MAX_SAFE_INTEGER - 2,
      entries: [
        { term: 7, index: Number.MAX_SAFE_INTEGER - 1, type: "normal", data: new Uint8Array(0) },
        {
          term: 7,
          index: Number.MAX_SAFE_INTEGER,
          type: "conf_change",
          data: new Uint8Array([0, 1, 2, 255]),
        },
        { term: 0, index: 0, type: "normal", data: new Uint8Array([9]) },
      ],
      commit: 12,
      reject: true,
      rejectHint: 41,
      context: new TextEncoder().encode("transfer"),
    };
    expect(wire(m)).toStrictEqual(m);
    expect(messageFromProto(messageToProto(m))).toStrictEqual(m);
  });

  it("round-trips a snap message with its snapshot, including an empty conf state and empty data", () => {
    const full: Snapshot = {
      metadata: { index: 100, term: 5, confState: { voters: [1, 2, 3], learners: [9] } },
      data: new Uint8Array([1, 2, 3, 4, 5]),
    };
    const empty: Snapshot = {
      metadata: { index: 0, term: 0, confState: { voters: [], learners: [] } },
      data: new Uint8Array(0),
    };
    for (const snapshot of [full, empty]) {
      const m: Message = { ...zeroMessage("snap"), to: 2, from: 1, term: 5, snapshot };
      expect(wire(m)).toStrictEqual(m);
      expect(snapshotFromProto(snapshotToProto(snapshot))).toStrictEqual(snapshot);
    }
  });

  it("keeps byte fields that are views into a larger buffer exact", () => {
    const backing = new Uint8Array([10, 11, 12, 13, 14, 15]);
    const m: Message = {
      ...zeroMessage("prop"),
      entries: [{ term: 1, index: 2, type: "normal", data: backing.subarray(2, 4) }],
      context: backing.subarray(5),
    };
    const back = wire(m);
    expect([...back.entries[0].data]).toEqual([12, 13]);
    expect([...back.context]).toEqual([15]);
  });

  it("round-trips hard state and conf changes (context absent vs empty stays distinct)", () => {
    const hs = { term: 3, vote: 0, commit: 0 };
    expect(
      hardStateFromProto(pb.HardState.decode(pb.HardState.encode(hardStateToProto(hs)).finish())),
    ).toStrictEqual(hs);
    const changes: ConfChange[] = [
      { type: "add_node", nodeId: 4 },
      { type: "add_learner", nodeId: 5, context: new Uint8Array(0) },
      { type: "remove_node", nodeId: 0, context: new TextEncoder().encode("10.0.0.5:2377") },
    ];
    for (const c of changes) {
      const back = confChangeFromProto(
        pb.ConfChange.decode(pb.ConfChange.encode(confChangeToProto(c)).finish()),
      );
      expect(back).toStrictEqual(c);
    }
  });

  it("refuses a message type it does not know, such as one from a newer peer", () => {
    const bad = messageToProto(zeroMessage("app"));
    bad.type = 99 as pb.MessageType;
    expect(() => messageFromProto(pb.RaftMessage.decode(pb.RaftMessage.encode(bad).finish()))).toThrow(
      ProtoConversionError,
    );
    const unset = messageToProto(zeroMessage("app"));
    unset.type = pb.MessageType.MESSAGE_TYPE_UNSPECIFIED;
    expect(() => messageFromProto(unset)).toThrow(/unknown message type 0/);
  });

  it("refuses numbers that are not uint64 before they reach the encoder", () => {
    expect(() => messageToProto({ ...zeroMessage("app"), index: -1 })).toThrow(ProtoConversionError);
    expect(() => messageToProto({ ...zeroMessage("app"), term: 1.5 })).toThrow(/term is not a uint64/);
    expect(() => messageToProto({ ...zeroMessage("app"), commit: 2 ** 53 })).toThrow(ProtoConversionError);
    expect(() =>
      messageToProto({
        ...zeroMessage("app"),
        entries: [{ term: 1, index: -3, type: "normal", data: new Uint8Array(0) }],
      }),
    ).toThrow(/entry index/);
    expect(() => messageToProto({ ...zeroMessage("app"), type: "bogus" as MessageType })).toThrow(
      /unknown message type bogus/,
    );
  });
});

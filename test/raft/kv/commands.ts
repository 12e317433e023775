// Commands of the replicated key-value state machine, msgpackr-encoded into entry data.
// Each carries the proposing client's id and a sequence number, so a command retried after a
// timeout (and so committed twice) takes effect once.
import { Packr } from "msgpackr";

export type KvOp =
  | { op: "put"; key: string; value: string }
  | { op: "cas"; key: string; expected: string | null; value: string }
  | { op: "get"; key: string };

export interface KvCommand {
  client: string;
  seq: number;
  cmd: KvOp;
}

export interface KvResult {
  ok: boolean;
  /** get: the value (null when absent); cas: the value found. */
  value: string | null;
}

const packr = new Packr({ useRecords: false });

export function encodeKvCommand(c: KvCommand): Uint8Array {
  return packr.pack(c);
}

export function decodeKvCommand(data: Uint8Array): KvCommand {
  return packr.unpack(data) as KvCommand;
}

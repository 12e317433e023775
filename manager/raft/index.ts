// The Raft library's public entry: what the rest of shoal (and the kv test server in
// test/raft/kv/) uses. manager/raft stands alone: it imports nothing of ours but proto/ (its
// gRPC messages). Inside: core/ is the pure consensus state machine, wal/ and snap/ persist on
// a Disk (disk.ts), driver/ runs the Ready loop (RaftNode), transport/ is gRPC. See docs/raft.md.
export {
  RaftNode,
  NodeClosedError,
  NotLeaderError,
  ProposalOutcomeUnknownError,
  type StateMachine,
} from "./driver/node.js";
export { NodeDisk, type Disk } from "./disk.js";
export { GrpcTransport, type SenderCheck } from "./transport/grpc-transport.js";
export { ProposalDroppedError } from "./core/errors.js";
export type { ConfChange, ConfState, NodeId } from "./core/types.js";

/**
 * Thrown by the local proposal paths (propose, proposeConfChange, readIndex, transferLeader is
 * never refused) when raft cannot accept the request: no known leader, a leader transfer in
 * progress, the uncommitted log over its budget, a configuration change already pending, or this
 * node removed. etcd returns ErrProposalDropped for the same cases; the caller should retry later.
 */
export class ProposalDroppedError extends Error {
  constructor(reason: string) {
    super(`raft proposal dropped: ${reason}`);
    this.name = "ProposalDroppedError";
  }
}

/** A ConfChange that cannot be applied to the current configuration (e.g. removing the last voter). */
export class ConfChangeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ConfChangeError";
  }
}

// Which managers the leader hears from. Raft's own `recentActive` is cleared at every quorum
// check (each election timeout) and set again by the next reply, so a sample taken on a tick
// that cleared it says "unreachable" for every follower; under load the status sync and the
// quorum check fall into step and a healthy manager stays "unreachable". Swarmkit likewise
// reports a member active from the messages it receives from it.

/** A member is reachable while its last message is at most this old (two election timeouts). */
export const REACHABLE_WINDOW_MS = 2_000;

export class PeerContact {
  private readonly lastHeard = new Map<number, number>();

  /** A Raft message from this member arrived. */
  heard(raftId: number, now = Date.now()): void {
    this.lastHeard.set(raftId, now);
  }

  reachable(raftId: number, now = Date.now()): boolean {
    const at = this.lastHeard.get(raftId);
    return at !== undefined && now - at <= REACHABLE_WINDOW_MS;
  }

  forget(raftId: number): void {
    this.lastHeard.delete(raftId);
  }
}

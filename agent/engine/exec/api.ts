import type { AttachSocket } from "../runtime/attach-socket.js";
import type { ExecInspect, ExecStartRequest } from "./types.js";

/** A started exec the caller streams: its stdio (when attached) and its end. */
export interface ExecRun {
  /** conmon's attach socket for the process (absent for a detached start). */
  socket?: AttachSocket;
  /** Resolves with the exit code once it is recorded (GET /exec/{id}/json shows it). */
  exited: Promise<number>;
}

/**
 * Exec sessions as the API layer uses them (`docker exec`). Ids are exact (no prefixes, as in
 * dockerd). Errors are ShoalErrors: 404 "No such exec instance: <id>" or "No such container",
 * 409 when the container is not running, paused or restarting, or the exec was already started,
 * 400 for a bad request or a command that cannot run (with Docker's 126/127 as its exit code).
 */
export interface ExecEngineApi {
  /** POST /containers/{id}/exec with its raw JSON body. */
  create(containerRef: string, body: unknown): Promise<{ Id: string }>;
  inspect(execId: string): Promise<ExecInspect>;
  /** Throws what start would throw before it runs anything (so a route can answer before it hijacks). */
  checkStart(execId: string): void;
  start(execId: string, request: ExecStartRequest): Promise<ExecRun>;
  /** Resize the session's terminal; waits (a bounded time) for a session being started. */
  resize(execId: string, height: number, width: number): Promise<void>;
  /** The exec's detach keys as given at create ("" = the default). */
  detachKeys(execId: string): string;
  /** Ids of the container's sessions not yet ended (container inspect's ExecIDs, as dockerd lists them). */
  idsOf(containerId: string): string[];
  /** The client left with its detach keys: the process goes on (Docker's exec_detach event). */
  detached(execId: string): void;
}

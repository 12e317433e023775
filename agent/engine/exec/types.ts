// Exec sessions in the Engine API's shapes: what POST /containers/{id}/exec takes, what
// GET /exec/{id}/json answers (moby's ExecInspectResponse), and what a start asks for.

/** A validated POST /containers/{id}/exec body (moby's ExecCreateRequest). */
export interface ExecCreateRequest {
  Cmd: string[];
  Env: string[];
  User: string;
  WorkingDir: string;
  Privileged: boolean;
  Tty: boolean;
  AttachStdin: boolean;
  AttachStdout: boolean;
  AttachStderr: boolean;
  /** As given ("ctrl-p,ctrl-q"); "" means the default sequence. */
  DetachKeys: string;
  /** [height, width] of the terminal to start with. */
  ConsoleSize?: [number, number];
}

/** A validated POST /exec/{id}/start body. */
export interface ExecStartRequest {
  Detach: boolean;
  Tty: boolean;
  ConsoleSize?: [number, number];
}

/** GET /exec/{id}/json, in moby's field names and order. */
export interface ExecInspect {
  ID: string;
  Running: boolean;
  /** null until the process ended (or failed to start). */
  ExitCode: number | null;
  ProcessConfig: {
    tty: boolean;
    entrypoint: string;
    arguments: string[];
    privileged: boolean;
    user?: string;
  };
  OpenStdin: boolean;
  OpenStderr: boolean;
  OpenStdout: boolean;
  CanRemove: boolean;
  ContainerID: string;
  /** The detach sequence as bytes (Go's []byte marshals as base64; null when unset). */
  DetachKeys: string | null;
  Pid: number;
}

/** What one exec session went through: created → running → exited (or failed before it ran). */
export type ExecState = "created" | "starting" | "running" | "exited";

// Errors the CLI prints and exits on. Exit codes follow the docker CLI: 125 when the tool
// itself fails, 126/127 when the command cannot be invoked or found, 1 for other daemon errors.

export class CliError extends Error {
  readonly exitCode: number;
  constructor(message: string, exitCode = 1) {
    super(message);
    this.name = "CliError";
    this.exitCode = exitCode;
  }
}

/** The daemon answered with an error status; `message` is its `{"message"}` body. */
export class DaemonError extends Error {
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.name = "DaemonError";
    this.status = status;
  }
  /** What the docker CLI prints for the same failure. */
  get display(): string {
    return `Error response from daemon: ${this.message}`;
  }
}

/** Invalid flag values: docker exits 125 for these whatever the command. */
export class UsageError extends CliError {
  constructor(message: string) {
    super(message, 125);
    this.name = "UsageError";
  }
}

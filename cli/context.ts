// What every command handler receives from main.ts.

export interface CommandContext<F = Record<string, unknown>> {
  /** Positional arguments in declaration order (variadic ones as arrays). */
  args: unknown[];
  flags: F;
  /** -H/--host as given, before SHOAL_HOST/DOCKER_HOST fallbacks. */
  host: string | undefined;
}

export const out = (s: string | Buffer): void => {
  process.stdout.write(s);
};

export const err = (s: string | Buffer): void => {
  process.stderr.write(s);
};

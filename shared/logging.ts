import { pino, type Logger } from "pino";

export type { Logger };

/** The daemon's structured logger. JSON lines on stderr; level from the daemon's config. */
export function createLogger(level: string = process.env.SHOAL_LOG_LEVEL ?? "info"): Logger {
  return pino({ level, base: { pid: process.pid } }, pino.destination(2));
}

/** A logger that drops everything; for library code exercised outside a daemon. */
export function silentLogger(): Logger {
  return pino({ level: "silent" });
}

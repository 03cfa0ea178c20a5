/**
 * A pino-compatible logger subset. Pass your pino (or any object with these methods); the
 * default is silent. Objects are passed first, as pino expects.
 */
export interface Logger {
  /** Very chatty diagnostics. */
  debug(obj: Record<string, unknown>, msg?: string): void;
  /** Normal progress. */
  info(obj: Record<string, unknown>, msg?: string): void;
  /** Something unexpected that the library handled. */
  warn(obj: Record<string, unknown>, msg?: string): void;
  /** A failure. */
  error(obj: Record<string, unknown>, msg?: string): void;
}

const noop = (): void => {};

/** A logger that drops everything (the default). */
export const silentLogger: Logger = Object.freeze({ debug: noop, info: noop, warn: noop, error: noop });

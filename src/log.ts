/** Leveled logging to stderr. Secrets never go through here: callers pass redacted values. */

export const LOG_LEVELS = ['DEBUG', 'INFO', 'WARN', 'ERROR', 'CRITICAL'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export interface Logger {
  debug(message: string): void;
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
  critical(message: string): void;
  level: LogLevel;
}

const rank: Record<LogLevel, number> = { DEBUG: 10, INFO: 20, WARN: 30, ERROR: 40, CRITICAL: 50 };

/** A logger that writes `[L YYYY-MM-DD HH:MM:SS.mmm KernelGateway] message` lines to `stream`. */
export function createLogger(level: LogLevel = 'INFO', stream: NodeJS.WritableStream = process.stderr): Logger {
  const logger: Logger = {
    level,
    debug: (m) => write('DEBUG', m),
    info: (m) => write('INFO', m),
    warn: (m) => write('WARN', m),
    error: (m) => write('ERROR', m),
    critical: (m) => write('CRITICAL', m),
  };
  function write(at: LogLevel, message: string): void {
    if (rank[at] < rank[logger.level]) return;
    const stamp = new Date().toISOString().replace('T', ' ').slice(0, 23);
    stream.write(`[${at[0]} ${stamp} KernelGateway] ${message}\n`);
  }
  return logger;
}

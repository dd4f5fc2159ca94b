// Logging: pino with redaction as a second line of defence. The first line is never passing secret values,
// tokens or rendered data to a log call at all; these paths catch mistakes.
import { pino, type Logger as PinoLogger, type LevelWithSilent } from 'pino';

export type Logger = PinoLogger;

export const REDACTED_PATHS = [
  'token', '*.token', 'jwt', '*.jwt', 'clientToken', '*.clientToken', 'client_token', '*.client_token',
  'secretId', '*.secretId', 'secret_id', '*.secret_id', 'password', '*.password',
  'data', '*.data', 'stringData', '*.stringData', 'headers["x-vault-token"]', '*.headers["x-vault-token"]',
  'headers.authorization', '*.headers.authorization',
];

export function createLogger(opts: { level?: LevelWithSilent; destination?: NodeJS.WritableStream } = {}): Logger {
  return pino(
    {
      level: opts.level ?? 'info',
      base: { app: 'vault-sync-operator' },
      redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    opts.destination as Parameters<typeof pino>[1],
  );
}

export const silentLogger: Logger = pino({ level: 'silent' });

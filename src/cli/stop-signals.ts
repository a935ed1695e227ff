// SIGINT/SIGTERM for the long-running commands (run, serve): the first stops taking new work and lets what is in
// flight finish; a second exits at once, 130 (SIGINT) or 143 (SIGTERM).
import { ExitCode } from '../errors.js';
import type { CliLog } from './log.js';

/** `finishing`: what the first signal's log line says happens next (after `SIGTERM: `). */
export function onStopSignals(log: CliLog, finishing: string): { signal: AbortSignal; dispose(): void } {
  const controller = new AbortController();
  const handler = (sig: NodeJS.Signals) => {
    if (controller.signal.aborted) process.exit(sig === 'SIGINT' ? ExitCode.interrupted : ExitCode.terminated);
    log.line(`${sig}: ${finishing} (again to stop at once)`);
    controller.abort(sig);
  };
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
  return {
    signal: controller.signal,
    dispose: () => {
      process.off('SIGINT', handler);
      process.off('SIGTERM', handler);
    },
  };
}

/**
 * Stopping a long command on SIGINT / SIGTERM: the first signal aborts a
 * controller that every stage checks (tokenizer, corpus, training steps), so
 * the command ends with its resumable state saved and nothing half-written;
 * the exit status says it was interrupted (130 / 143, as a shell reports a
 * process killed by the signal), so `train && eval` does not go on to
 * evaluate a half-trained model. A second signal exits at once.
 */
import { P5recError, type ErrorFacts } from '../errors.js';

export type StopSignal = 'SIGINT' | 'SIGTERM';

/** The run was stopped by a signal; `exitCode` is 128 + the signal number. */
export class InterruptedError extends P5recError {
  readonly signal: StopSignal;
  constructor(message: string, signal: StopSignal, facts: ErrorFacts = {}) {
    super(message, facts);
    this.name = 'InterruptedError';
    this.signal = signal;
  }

  get exitCode(): number {
    return this.signal === 'SIGINT' ? 130 : 143;
  }
}

/** The signal that aborted `signal` (its reason), SIGINT when it was aborted some other way. */
export function stopSignalOf(signal: AbortSignal): StopSignal {
  return signal.reason === 'SIGTERM' ? 'SIGTERM' : 'SIGINT';
}

/** Throw an {@link InterruptedError} when `signal` was aborted. */
export function throwIfStopped(signal: AbortSignal | undefined, what: string): void {
  if (signal?.aborted) throw new InterruptedError(`interrupted by ${stopSignalOf(signal)} ${what}`, stopSignalOf(signal));
}

/**
 * Install SIGINT/SIGTERM handlers for the duration of a command. The first
 * signal aborts `signal` (reason: the signal's name) after printing `notice`;
 * a second one exits at once with the signal's status.
 */
export function stopOnSignals(notice: string): { signal: AbortSignal; dispose(): void } {
  const ac = new AbortController();
  const handler = (sig: StopSignal): void => {
    if (ac.signal.aborted) {
      process.stderr.write(`\np5rec: ${sig} again: exiting now\n`);
      process.exit(sig === 'SIGINT' ? 130 : 143);
    }
    process.stderr.write(`\np5rec: ${sig}: ${notice}\n`);
    ac.abort(sig);
  };
  const onInt = (): void => handler('SIGINT');
  const onTerm = (): void => handler('SIGTERM');
  process.on('SIGINT', onInt);
  process.on('SIGTERM', onTerm);
  return {
    signal: ac.signal,
    dispose: () => {
      process.off('SIGINT', onInt);
      process.off('SIGTERM', onTerm);
    },
  };
}

/**
 * Progress on stderr: done/total, rate and ETA. Redraws in place on a TTY,
 * prints a line at most every few seconds otherwise (CI logs stay readable).
 * Silent when `quiet`.
 */
export interface ProgressOptions {
  label: string;
  total?: number;
  unit?: string;
  quiet?: boolean;
  stream?: NodeJS.WritableStream & { isTTY?: boolean };
  /** Minimum ms between non-TTY lines. */
  intervalMs?: number;
  /** False: every report reaches a listener (coarse bars, such as a pipeline's stages); default true (at most one per 250 ms). */
  throttle?: boolean;
}

/** One progress report, as a library caller's listener receives it. */
export interface ProgressEvent {
  label: string;
  done: number;
  total?: number;
  unit: string;
  /** Units per second since the start. */
  rate: number;
  /** Seconds left at the current rate, when the total is known. */
  etaSeconds?: number;
  final: boolean;
  extra?: string;
}

let listener: ((e: ProgressEvent) => void) | null = null;

/**
 * Send every progress report to `fn` instead of stderr (null restores stderr).
 * A library caller's hook: training, imports and evaluations all report through it.
 */
export function setProgressListener(fn: ((e: ProgressEvent) => void) | null): void {
  listener = fn;
}

let interrupt: (() => void) | null = null;

/**
 * A check run at every progress report, before anything is drawn; it may
 * throw. runPipeline uses it to stop work that takes no AbortSignal (baseline
 * fits, evaluations) at its next report instead of at the end of the stage.
 */
export function setProgressInterrupt(fn: (() => void) | null): void {
  interrupt = fn;
}

export class Progress {
  private done = 0;
  private readonly start = Date.now();
  private lastDraw = 0;
  private readonly stream: NodeJS.WritableStream & { isTTY?: boolean };
  constructor(private readonly opts: ProgressOptions) {
    this.stream = opts.stream ?? process.stderr;
  }

  get value(): number {
    return this.done;
  }

  setTotal(total: number): void {
    this.opts.total = total;
  }

  tick(n = 1, extra?: string): void {
    this.done += n;
    this.draw(false, extra);
  }

  set(done: number, extra?: string): void {
    this.done = done;
    this.draw(false, extra);
  }

  finish(extra?: string): void {
    this.draw(true, extra);
  }

  private draw(final: boolean, extra?: string): void {
    interrupt?.();
    if (listener) {
      const now = Date.now();
      if (!final && this.opts.throttle !== false && now - this.lastDraw < 250) return;
      this.lastDraw = now;
      const seconds = (now - this.start) / 1000;
      const rate = seconds > 0 ? this.done / seconds : 0;
      const total = this.opts.total;
      listener({ label: this.opts.label, done: this.done, total, unit: this.opts.unit ?? 'it', rate, etaSeconds: total && rate > 0 && this.done < total ? (total - this.done) / rate : undefined, final, extra });
      return;
    }
    if (this.opts.quiet) return;
    const now = Date.now();
    const tty = Boolean(this.stream.isTTY);
    const interval = tty ? 100 : (this.opts.intervalMs ?? 2000);
    if (!final && now - this.lastDraw < interval) return;
    this.lastDraw = now;
    const line = formatProgress(this.opts.label, this.done, this.opts.total, (now - this.start) / 1000, this.opts.unit, extra);
    if (tty) this.stream.write(`\r\x1b[K${line}${final ? '\n' : ''}`);
    else this.stream.write(`${line}\n`);
  }
}

export function formatProgress(label: string, done: number, total: number | undefined, seconds: number, unit = 'it', extra?: string): string {
  const rate = seconds > 0 ? done / seconds : 0;
  const parts = [label];
  if (total && total > 0) {
    const pct = Math.min(100, (100 * done) / total);
    parts.push(`${fmtCount(done)}/${fmtCount(total)} ${unit} (${pct.toFixed(1)}%)`);
  } else parts.push(`${fmtCount(done)} ${unit}`);
  parts.push(`${fmtCount(rate)} ${unit}/s`);
  if (total && total > 0 && rate > 0 && done < total) parts.push(`ETA ${fmtDuration((total - done) / rate)}`);
  else parts.push(`${fmtDuration(seconds)} elapsed`);
  if (extra) parts.push(extra);
  return parts.join(' | ');
}

export function fmtCount(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)}G`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)}M`;
  if (n >= 1e4) return `${(n / 1e3).toFixed(1)}k`;
  return Number.isInteger(n) ? String(n) : n.toFixed(1);
}

export function fmtDuration(s: number): string {
  if (!Number.isFinite(s)) return '?';
  if (s < 60) return `${s.toFixed(1)}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${String(Math.round(s - m * 60)).padStart(2, '0')}s`;
  const h = Math.floor(m / 60);
  return `${h}h${String(m - h * 60).padStart(2, '0')}m`;
}

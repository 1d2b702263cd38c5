/**
 * Progress of a long loop on stderr: on a TTY one line redrawn at most 10 times a second
 * (step, rate, ETA and whatever the caller reports, e.g. loss); elsewhere (CI logs) one
 * timestamped line every `intervalSeconds`, and a last line at the end.
 * @module
 */

/** A progress display for `total` units. */
export class Progress {
  readonly #label: string;
  readonly #total: number;
  readonly #unit: string;
  readonly #tty: boolean;
  readonly #interval: number;
  readonly #write: (s: string) => void;
  readonly #now: () => number;
  #start: number;
  #lastDraw = -Infinity;
  #done = 0;
  #extra = "";
  #startDone = 0;

  constructor(
    label: string,
    total: number,
    opts: {
      unit?: string;
      tty?: boolean;
      intervalSeconds?: number;
      write?: (s: string) => void;
      now?: () => number;
    } = {},
  ) {
    this.#label = label;
    this.#total = total;
    this.#unit = opts.unit ?? "step";
    this.#tty = opts.tty ?? Deno.stderr.isTerminal();
    this.#interval = (opts.intervalSeconds ?? 10) * 1000;
    const enc = new TextEncoder();
    this.#write = opts.write ?? ((s) => Deno.stderr.writeSync(enc.encode(s)));
    this.#now = opts.now ?? (() => performance.now());
    this.#start = this.#now();
  }

  /** Marks where counting starts (a resumed run starts mid-way; its rate counts new units). */
  resumeAt(done: number): void {
    this.#done = done;
    this.#startDone = done;
    this.#start = this.#now();
  }

  /** Reports `done` units finished, with an optional status such as `loss 0.123`. */
  update(done: number, extra = ""): void {
    this.#done = done;
    this.#extra = extra;
    const t = this.#now();
    const gap = this.#tty ? 100 : this.#interval;
    if (t - this.#lastDraw >= gap) {
      this.#lastDraw = t;
      this.#draw(false);
    }
  }

  /** Prints the final line. */
  finish(extra?: string): void {
    if (extra !== undefined) this.#extra = extra;
    this.#draw(true);
  }

  /** The current status line (without control characters). */
  line(): string {
    const elapsed = (this.#now() - this.#start) / 1000;
    const newUnits = this.#done - this.#startDone;
    const rate = elapsed > 0 ? newUnits / elapsed : 0;
    const left = rate > 0 ? (this.#total - this.#done) / rate : NaN;
    const pct = this.#total > 0 ? Math.floor((100 * this.#done) / this.#total) : 100;
    const parts = [
      `${this.#label}`,
      `${this.#unit} ${this.#done}/${this.#total} (${pct}%)`,
      `${rate.toFixed(rate < 10 ? 2 : 0)} ${this.#unit}/s`,
      Number.isFinite(left) ? `ETA ${formatSeconds(left)}` : "ETA —",
    ];
    if (this.#extra) parts.push(this.#extra);
    return parts.join(" | ");
  }

  #draw(final: boolean): void {
    if (this.#tty) {
      this.#write(`\r\x1b[2K${this.line()}${final ? "\n" : ""}`);
    } else {
      const stamp = new Date().toISOString().slice(11, 19);
      this.#write(`[${stamp}] ${this.line()}\n`);
    }
  }
}

/** `75` → `1m15s`; `3725` → `1h02m`. */
export function formatSeconds(s: number): string {
  if (s < 60) return `${Math.round(s)}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(Math.round(s % 60)).padStart(2, "0")}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
}

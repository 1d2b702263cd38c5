/**
 * What a suite is: one paper claim, run against fixed seeds, returning checks (each with its
 * source, metric, threshold and expected verdict), metrics and figures as data. The CLI turns
 * outcomes into `results.json` and reports.
 * @module
 */
import type { Calibration, CheckResult, FigureData, Margin, Verdict } from "../reports/schema.ts";
import type { EngineKind } from "../runner/engine.ts";
import type { TrainContext } from "../runner/training.ts";

/** Run profile: `full` reproduces the claim at the documented budget, `quick` is CI's. */
export type Profile = "quick" | "full";

/** The profiles, in the order `--profile` lists them. */
export const PROFILES: readonly Profile[] = ["quick", "full"];

/**
 * A profile a suite runs at: the CLI's, or `smoke`, the tests' budget (a few training steps, one
 * seed, tiny evaluation sets: seconds per suite, and models too bad to pass a validity gate). The
 * CLI does not offer `smoke` and results files never record it; unit tests drive every suite's
 * `run()` with it (`registry_test.ts`).
 */
export type SuiteProfile = Profile | "smoke";

/**
 * What a suite receives from the CLI: the profile and base seed, and what training and
 * evaluation need (`runner/training.ts`): the open engine (`runner/engine.ts`), which every
 * session the suite opens runs on, threads, the model cache, progress and log.
 */
export interface SuiteContext extends TrainContext {
  profile: SuiteProfile;
  /** Base seed (`--seed`, default 0): training seeds are seed, seed + 1, seed + 2. */
  seed: number;
}

/** What a suite returns. Everything but `phases` is deterministic for a seed and thread count. */
export interface SuiteOutcome {
  config: Record<string, unknown>;
  checks: CheckResult[];
  metrics: Record<string, unknown>;
  figures: FigureData[];
  /** Wall-clock seconds per phase; written to `timings.json`, not `results.json`. */
  phases?: Record<string, number>;
}

/** A registered suite. */
export interface Suite {
  /** Kebab-case id, e.g. `selective-copy`. */
  id: string;
  title: string;
  /** The claim in one sentence. */
  claim: string;
  /** Where it comes from. */
  source: string;
  /** Its pilots on calibration seeds, per profile (none for a suite with nothing to calibrate). */
  pilots?: Partial<Record<Profile, Pilot>>;
  run(ctx: SuiteContext): Promise<SuiteOutcome>;
}

/**
 * The first calibration seed. Pilots (which set budgets, recipes and thresholds) train seeds
 * 1000, 1001, …; verdicts are judged on seeds 0, 1, 2 (`--seed 0`, the default), which no pilot
 * touched. `--seed 1000` re-runs a pilot.
 */
export const CALIBRATION_SEED = 1000;

/** Whether a run's base seed makes it a pilot on calibration seeds rather than a verdict run. */
export function isPilotRun(ctx: Pick<SuiteContext, "seed">): boolean {
  return ctx.seed >= CALIBRATION_SEED;
}

/**
 * A profile's pilot, frozen: the calibration seeds it trained, what it decided, and each
 * calibrated check's figures there. Re-run it with `deno task reproduce --profile <p> --suite
 * <id> --seed 1000`; a suite records its pilot in results.json (`config.calibration`) and each
 * check's figures beside its verdict (`calibration`).
 */
export interface Pilot {
  /** Calibration seeds (each ≥ {@linkcode CALIBRATION_SEED}). */
  seeds: number[];
  /**
   * The engine the pilot trained on; runs of its profile use it unless `--engine` says
   * otherwise (rounding moves verdicts near a threshold).
   */
  engine: EngineKind;
  /** What the pilot decided (budget, recipe, threshold) and what else it tried. */
  decided: string;
  /** Per check id: the pilot's measurement, per-seed values and verdict. */
  checks: Readonly<Record<string, Omit<Calibration, "seeds">>>;
}

/**
 * What a quick profile's pilot says of its second run, on the native engine (the quick profiles'
 * engine since, for CI's time); the pilot's `decided` ends with the portable run's figures.
 */
export const NATIVE_NOTE = " Piloted again on the native engine, which the quick profile has " +
  "used since (its train steps take less time): the same verdicts, with the figures below; the " +
  "portable engine's pilot had ";

/**
 * The pilot a run reports beside its verdicts: its profile's, or none when the run is itself a
 * pilot (or a smoke run, which nothing calibrates).
 */
export function pilotOf(
  pilots: Partial<Record<Profile, Pilot>>,
  ctx: Pick<SuiteContext, "seed" | "profile">,
): Pilot | undefined {
  return ctx.profile === "smoke" || isPilotRun(ctx) ? undefined : pilots[ctx.profile];
}

/** The calibration record of check `id`: its pilot's figures, or undefined if it has none. */
export function calibrationOf(pilot: Pilot | undefined, id: string): Calibration | undefined {
  const figures = pilot?.checks[id];
  return pilot && figures ? { seeds: [...pilot.seeds], ...figures } : undefined;
}

/**
 * A check before its verdict is computed: everything a {@linkcode CheckResult} records but the
 * actual verdict. `measured: null` makes it inconclusive; so does `inconclusive` (e.g. a failed
 * validity gate), whose reason is appended to the detail. `expected` is the verdict the source
 * claims; with a `calibration`, the check expects its pilot's verdict instead (see
 * {@linkcode check}).
 */
export type CheckSpec = Omit<CheckResult, "actual" | "matches"> & { inconclusive?: string };

/**
 * The verdict of a measurement with a confidence interval: it passes only when the interval's
 * bound on the threshold's side clears the threshold, fails when the other bound misses it, and
 * is inconclusive when the threshold lies inside.
 */
export function marginVerdict(
  margin: Margin,
  direction: CheckResult["direction"],
  threshold: number,
): Verdict {
  const { lower, upper } = margin;
  switch (direction) {
    case ">=":
      return lower >= threshold ? "pass" : upper < threshold ? "fail" : "inconclusive";
    case ">":
      return lower > threshold ? "pass" : upper <= threshold ? "fail" : "inconclusive";
    case "<=":
      return upper <= threshold ? "pass" : lower > threshold ? "fail" : "inconclusive";
    case "<":
      return upper < threshold ? "pass" : lower >= threshold ? "fail" : "inconclusive";
    case "==":
      return lower === threshold && upper === threshold ? "pass" : "inconclusive";
  }
}

/** Whether `measured <direction> threshold` holds. */
export function compare(
  measured: number,
  direction: CheckResult["direction"],
  threshold: number,
): boolean {
  switch (direction) {
    case ">=":
      return measured >= threshold;
    case "<=":
      return measured <= threshold;
    case ">":
      return measured > threshold;
    case "<":
      return measured < threshold;
    case "==":
      return measured === threshold;
  }
}

/**
 * Computes the verdict of a check: pass/fail from the comparison, or inconclusive. A calibrated
 * check is pre-registered: it expects the verdict its pilot found on calibration seeds, and
 * when that departs from the source's claim the result keeps the claim in `claimed`, so reports
 * say "not reproduced by the pilot" rather than hide it under "as expected".
 */
export function check(spec: CheckSpec): CheckResult {
  const expected = spec.calibration?.actual ?? spec.expected;
  let actual: Verdict;
  let detail = spec.detail;
  if (spec.inconclusive) {
    actual = "inconclusive";
    detail = `${detail} INCONCLUSIVE: ${spec.inconclusive}`;
  } else if (spec.measured === null || spec.threshold === null || Number.isNaN(spec.measured)) {
    actual = "inconclusive";
  } else if (spec.margin) {
    const m = spec.margin;
    actual = marginVerdict(m, spec.direction, spec.threshold);
    detail = `${detail} Margin: one-sided ${Math.round(m.confidence * 100)}% Wilson bounds ` +
      `${round6(m.lower)}–${round6(m.upper)} (${m.basis})` +
      (actual === "inconclusive"
        ? `; the threshold ${spec.threshold} lies between them: INCONCLUSIVE.`
        : ".");
  } else {
    actual = compare(spec.measured, spec.direction, spec.threshold) ? "pass" : "fail";
  }
  const result: CheckResult = {
    id: spec.id,
    title: spec.title,
    source: spec.source,
    metric: spec.metric,
    measured: spec.measured,
    threshold: spec.threshold,
    direction: spec.direction,
    expected,
    evidence: spec.evidence,
    actual,
    matches: actual === expected,
    detail,
  };
  // A derived expectation (no pilot: an exact argument says the claim fails) names the claim
  // itself in `claimed`; a pilot's departs from the claim in `spec.expected`.
  if (spec.claimed !== undefined && spec.claimed !== expected) result.claimed = spec.claimed;
  else if (expected !== spec.expected) result.claimed = spec.expected;
  if (spec.margin) result.margin = spec.margin;
  if (spec.seeds) result.seeds = spec.seeds;
  if (spec.perSeed) result.perSeed = spec.perSeed;
  if (spec.calibration) result.calibration = spec.calibration;
  return result;
}

/** Median of a non-empty list (mean of the middle two for even lengths). */
export function median(xs: readonly number[]): number {
  if (xs.length === 0) throw new RangeError("Cannot take the median of an empty list");
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Rounds for results files, so tiny float noise does not churn diffs: 6 significant digits. */
export function round6(x: number): number {
  return Number.isFinite(x) ? Number(x.toPrecision(6)) : x;
}

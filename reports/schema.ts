/**
 * The versioned results schema: what a suite run writes to `<suite>/results.json` and what
 * `reports/` reads. Bump {@link RESULTS_SCHEMA} on any incompatible change.
 * @module
 */

/** Identifier and version of the results format, stored in every results file. */
export const RESULTS_SCHEMA = "claimbench.results/2";

/** Outcome of a check or of a whole run. */
export type Verdict = "pass" | "fail" | "inconclusive";

/**
 * What a check's measurement rests on: a model trained here (`trained`), a hand-built model run
 * in ONNX Runtime (`constructed`), or a formula or a Monte-Carlo estimate of a proven bound
 * (`arithmetic`). Summaries count them apart, so that "as expected" says what kind of evidence
 * it is.
 */
export type Evidence = "trained" | "constructed" | "arithmetic";

/** The evidence classes, in the order summaries list them. */
export const EVIDENCE: readonly Evidence[] = ["trained", "constructed", "arithmetic"];

/** One checked claim: a measured number compared with a threshold. */
export interface CheckResult {
  /** Short id, e.g. "S1", "J2". */
  id: string;
  /** One line: what is checked. */
  title: string;
  /** Where the claim/number comes from, e.g. "seed 000 table 3; CLAIMS.md §2.2 S3". */
  source: string;
  /** What was measured, with unit. */
  metric: string;
  /** The measured value (null when not computable). */
  measured: number | null;
  threshold: number | null;
  /** `measured <direction> threshold` passes. */
  direction: ">=" | "<=" | ">" | "<" | "==";
  /**
   * The verdict we expect: the source's claim, or for a calibrated check the verdict of its pilot
   * on calibration seeds (pre-registered before the verdict seeds ran).
   */
  expected: Verdict;
  /**
   * The verdict the source claims, present only where `expected` departs from it: the pilot did
   * not reproduce the claim at this budget, and the report says so.
   */
  claimed?: Verdict;
  /** What the measurement rests on. */
  evidence: Evidence;
  actual: Verdict;
  /** `actual === expected`. */
  matches: boolean;
  /** Human sentence: reason for the threshold, per-seed values, etc. */
  detail: string;
  seeds?: number[];
  perSeed?: (number | null)[];
  /** The measurement's confidence interval, when its verdict rests on one (a proportion's). */
  margin?: Margin;
  /**
   * The same measurement in the pilot on calibration seeds, which set the check's budget and
   * threshold before the verdict seeds ran; absent for checks with nothing to calibrate.
   */
  calibration?: Calibration;
}

/**
 * A check's pilot, frozen before its verdict: the calibration seeds (1000 and up, never verdict
 * seeds), what the check measured on them and the verdict it would have had there.
 */
export interface Calibration {
  seeds: number[];
  measured: number | null;
  perSeed?: (number | null)[];
  actual: Verdict;
}

/**
 * One-sided confidence bounds of a measured proportion: the verdict passes only when the bound on
 * the threshold's side clears it (`suites/suite.ts` `marginVerdict`).
 */
export interface Margin {
  lower: number;
  upper: number;
  /** Each bound's one-sided confidence, e.g. 0.95. */
  confidence: number;
  /** What the bounds are of, e.g. "the median seed, 193 of 256 strings". */
  basis: string;
}

/** One encoded field of a figure. */
export interface FigureField {
  field: string;
  title: string;
  type: "quantitative" | "ordinal" | "nominal";
  scale?: "linear" | "log";
}

/** A figure described as data; `reports/figures.ts` turns it into a Vega-Lite spec. */
export interface FigureData {
  /** Kebab-case, used as file name. */
  id: string;
  title: string;
  /** One or two sentences for the report. */
  caption: string;
  /** "line" draws line + points; "rect" is a heat-map (colour = quantitative field). */
  mark: "line" | "point" | "bar" | "rect";
  data: Record<string, number | string | boolean | null>[];
  x: FigureField;
  y: FigureField;
  /** Series / category. */
  color?: FigureField;
  /** Facet into small multiples. */
  column?: FigureField;
  /** Boolean field: points coloured/shaped by pass (green) / fail (red). */
  passField?: string;
  /** Shaded range (e.g. min/max over seeds), same colour as the series. */
  band?: { lower: string; upper: string };
  /** Thresholds/guide values drawn as rules with a text label. */
  rules?: { axis: "x" | "y"; value: number; label: string }[];
  /** Ranges of x shaded grey under the data, with a text label (e.g. the training range). */
  spans?: { from: number; to: number; label: string }[];
}

/** Everything one suite run produced. */
export interface RunResults {
  schema: typeof RESULTS_SCHEMA;
  /** Kebab-case id. */
  suite: string;
  title: string;
  claim: string;
  source: string;
  profile: "quick" | "full";
  seed: number;
  threads: number;
  config: Record<string, unknown>;
  checks: CheckResult[];
  metrics: Record<string, unknown>;
  figures: FigureData[];
  /** "pass" if every check matches its expectation, etc. (computed by the caller). */
  verdict: Verdict;
  versions: Record<string, string>;
}

/** Wall-clock time of one suite run, split into named phases (seconds). */
export interface RunTimings {
  suite: string;
  wallSeconds: number;
  phases: Record<string, number>;
}

/** Counts over a list of checks. */
export interface CheckSummary {
  total: number;
  pass: number;
  fail: number;
  inconclusive: number;
  /** Checks whose actual verdict equals the expected one. */
  matched: number;
  /** True when every check matches its expectation (also for an empty list). */
  allMatch: boolean;
  /** Checks and matches per evidence class. */
  byEvidence: Record<Evidence, { total: number; matched: number }>;
  /**
   * Ids of the checks whose verdict is not the source's claim (`claimed`, else `expected`):
   * claims not reproduced here, whether or not their pilot foresaw it.
   */
  notReproduced: string[];
}

/**
 * Counts the actual verdicts and how many checks match their expectation.
 *
 * @example
 * ```ts
 * summarise([]).allMatch; // true: no check differs from its expectation
 * ```
 */
export function summarise(checks: CheckResult[]): CheckSummary {
  let pass = 0, fail = 0, inconclusive = 0, matched = 0;
  const notReproduced: string[] = [];
  const byEvidence = Object.fromEntries(
    EVIDENCE.map((e) => [e, { total: 0, matched: 0 }]),
  ) as CheckSummary["byEvidence"];
  for (const c of checks) {
    if (c.actual === "pass") pass++;
    else if (c.actual === "fail") fail++;
    else inconclusive++;
    if (c.matches) matched++;
    byEvidence[c.evidence].total++;
    if (c.matches) byEvidence[c.evidence].matched++;
    if (c.actual !== (c.claimed ?? c.expected)) notReproduced.push(c.id);
  }
  const total = checks.length;
  return {
    total,
    pass,
    fail,
    inconclusive,
    matched,
    allMatch: matched === total,
    byEvidence,
    notReproduced,
  };
}

/**
 * The summary line of a run: how many checks match, then per evidence class, then the checks
 * whose claim is not reproduced, e.g. `22 of 22 checks match their expected verdicts (trained 9
 * of 9; constructed 6 of 6; arithmetic 7 of 7); the claim of 1 is not reproduced: J4-HA-4x`.
 * CI reads its leading count.
 */
export function summaryLine(s: CheckSummary): string {
  const parts = EVIDENCE.filter((e) => s.byEvidence[e].total > 0)
    .map((e) => `${e} ${s.byEvidence[e].matched} of ${s.byEvidence[e].total}`);
  const missed = s.notReproduced;
  return `${s.matched} of ${s.total} checks match their expected verdicts` +
    (parts.length ? ` (${parts.join("; ")})` : "") +
    (missed.length
      ? `; the claim of ${missed.length} is not reproduced: ${missed.join(", ")}`
      : "");
}

const VERDICTS = ["pass", "fail", "inconclusive"];
const DIRECTIONS = [">=", "<=", ">", "<", "=="];
const MARKS = ["line", "point", "bar", "rect"];
const FIELD_TYPES = ["quantitative", "ordinal", "nominal"];
const KEBAB = /^[a-z0-9]+(-[a-z0-9]+)*$/;

function bad(path: string, want: string, value: unknown): never {
  const shown = JSON.stringify(value) ?? String(value);
  throw new TypeError(
    `Cannot read results as ${path} must be ${want}: current value is ${shown.slice(0, 80)}`,
  );
}

function isObject(x: unknown): x is Record<string, unknown> {
  return typeof x === "object" && x !== null && !Array.isArray(x);
}

function object(x: unknown, path: string): Record<string, unknown> {
  if (!isObject(x)) bad(path, "an object", x);
  return x;
}

function array(x: unknown, path: string): unknown[] {
  if (!Array.isArray(x)) bad(path, "an array", x);
  return x;
}

function string(x: unknown, path: string): void {
  if (typeof x !== "string") bad(path, "a string", x);
}

function kebab(x: unknown, path: string): void {
  if (typeof x !== "string" || !KEBAB.test(x)) bad(path, "a kebab-case string", x);
}

function oneOf(x: unknown, options: readonly string[], path: string): void {
  if (typeof x !== "string" || !options.includes(x)) bad(path, `one of ${options.join(", ")}`, x);
}

function finite(x: unknown, path: string): void {
  if (typeof x !== "number" || !Number.isFinite(x)) bad(path, "a finite number", x);
}

function integer(x: unknown, path: string): void {
  if (!Number.isInteger(x)) bad(path, "an integer", x);
}

function numberOrNull(x: unknown, path: string): void {
  if (x !== null && (typeof x !== "number" || !Number.isFinite(x))) {
    bad(path, "a finite number or null", x);
  }
}

function validateCheck(x: unknown, path: string): void {
  const c = object(x, path);
  string(c.id, `${path}.id`);
  string(c.title, `${path}.title`);
  string(c.source, `${path}.source`);
  string(c.metric, `${path}.metric`);
  numberOrNull(c.measured, `${path}.measured`);
  numberOrNull(c.threshold, `${path}.threshold`);
  oneOf(c.direction, DIRECTIONS, `${path}.direction`);
  oneOf(c.expected, VERDICTS, `${path}.expected`);
  if (c.claimed !== undefined) {
    oneOf(c.claimed, VERDICTS, `${path}.claimed`);
    if (c.claimed === c.expected) {
      bad(`${path}.claimed`, "absent when equal to expected", c.claimed);
    }
  }
  oneOf(c.evidence, EVIDENCE, `${path}.evidence`);
  if (c.margin !== undefined) {
    const m = c.margin as Record<string, unknown>;
    finite(m.lower, `${path}.margin.lower`);
    finite(m.upper, `${path}.margin.upper`);
    finite(m.confidence, `${path}.margin.confidence`);
    if (typeof m.basis !== "string") bad(`${path}.margin.basis`, "a string", m.basis);
  }
  oneOf(c.actual, VERDICTS, `${path}.actual`);
  if (c.matches !== (c.actual === c.expected)) {
    bad(`${path}.matches`, "actual === expected", c.matches);
  }
  string(c.detail, `${path}.detail`);
  if (c.seeds !== undefined) {
    array(c.seeds, `${path}.seeds`).forEach((s, i) => integer(s, `${path}.seeds[${i}]`));
  }
  if (c.perSeed !== undefined) {
    array(c.perSeed, `${path}.perSeed`).forEach((v, i) => numberOrNull(v, `${path}.perSeed[${i}]`));
  }
  if (c.calibration !== undefined) {
    const k = object(c.calibration, `${path}.calibration`);
    array(k.seeds, `${path}.calibration.seeds`).forEach((s, i) =>
      integer(s, `${path}.calibration.seeds[${i}]`)
    );
    numberOrNull(k.measured, `${path}.calibration.measured`);
    if (k.perSeed !== undefined) {
      array(k.perSeed, `${path}.calibration.perSeed`).forEach((v, i) =>
        numberOrNull(v, `${path}.calibration.perSeed[${i}]`)
      );
    }
    oneOf(k.actual, VERDICTS, `${path}.calibration.actual`);
  }
}

function validateField(x: unknown, path: string): void {
  const f = object(x, path);
  string(f.field, `${path}.field`);
  string(f.title, `${path}.title`);
  oneOf(f.type, FIELD_TYPES, `${path}.type`);
  if (f.scale !== undefined) oneOf(f.scale, ["linear", "log"], `${path}.scale`);
}

function validateFigure(x: unknown, path: string): void {
  const f = object(x, path);
  kebab(f.id, `${path}.id`);
  string(f.title, `${path}.title`);
  string(f.caption, `${path}.caption`);
  oneOf(f.mark, MARKS, `${path}.mark`);
  array(f.data, `${path}.data`).forEach((row, i) => {
    for (const [key, value] of Object.entries(object(row, `${path}.data[${i}]`))) {
      const t = typeof value;
      if (value !== null && t !== "number" && t !== "string" && t !== "boolean") {
        bad(`${path}.data[${i}].${key}`, "a number, string, boolean or null", value);
      }
    }
  });
  validateField(f.x, `${path}.x`);
  validateField(f.y, `${path}.y`);
  if (f.color !== undefined) validateField(f.color, `${path}.color`);
  if (f.column !== undefined) validateField(f.column, `${path}.column`);
  if (f.passField !== undefined) string(f.passField, `${path}.passField`);
  if (f.band !== undefined) {
    const band = object(f.band, `${path}.band`);
    string(band.lower, `${path}.band.lower`);
    string(band.upper, `${path}.band.upper`);
  }
  if (f.rules !== undefined) {
    array(f.rules, `${path}.rules`).forEach((r, i) => {
      const rule = object(r, `${path}.rules[${i}]`);
      oneOf(rule.axis, ["x", "y"], `${path}.rules[${i}].axis`);
      finite(rule.value, `${path}.rules[${i}].value`);
      string(rule.label, `${path}.rules[${i}].label`);
    });
  }
  if (f.spans !== undefined) {
    array(f.spans, `${path}.spans`).forEach((r, i) => {
      const span = object(r, `${path}.spans[${i}]`);
      finite(span.from, `${path}.spans[${i}].from`);
      finite(span.to, `${path}.spans[${i}].to`);
      string(span.label, `${path}.spans[${i}].label`);
    });
  }
}

/**
 * Checks that `x` (e.g. a parsed results.json) is a {@link RunResults} and returns it typed.
 * Throws a TypeError naming the first bad field, e.g. `checks[2].measured`.
 *
 * @example
 * ```ts ignore
 * const results = validateResults(JSON.parse(await Deno.readTextFile("out/s4/results.json")));
 * ```
 */
export function validateResults(x: unknown): RunResults {
  const r = object(x, "results");
  if (r.schema !== RESULTS_SCHEMA) bad("schema", JSON.stringify(RESULTS_SCHEMA), r.schema);
  kebab(r.suite, "suite");
  string(r.title, "title");
  string(r.claim, "claim");
  string(r.source, "source");
  oneOf(r.profile, ["quick", "full"], "profile");
  integer(r.seed, "seed");
  integer(r.threads, "threads");
  object(r.config, "config");
  array(r.checks, "checks").forEach((c, i) => validateCheck(c, `checks[${i}]`));
  object(r.metrics, "metrics");
  const figureIds = new Set<unknown>();
  array(r.figures, "figures").forEach((f, i) => {
    validateFigure(f, `figures[${i}]`);
    // Ids name the figure files, so a repeated id would overwrite a figure.
    const id = (f as { id: unknown }).id;
    if (figureIds.has(id)) bad(`figures[${i}].id`, "unique within the suite", id);
    figureIds.add(id);
  });
  oneOf(r.verdict, VERDICTS, "verdict");
  for (const [key, value] of Object.entries(object(r.versions, "versions"))) {
    string(value, `versions.${key}`);
  }
  return r as unknown as RunResults;
}

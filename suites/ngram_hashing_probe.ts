/**
 * Claim ("Repeat After Me", Jelassi et al. 2024, §3.4; seed 002; CLAIMS.md §1.4 J6): a trained
 * copying transformer relies on n-gram lookups, so its accuracy collapses once a duplicated n-gram
 * is long enough ("roughly the same accuracy for n ≤ 4", dropping from 5).
 *
 * The probe: copy strings that contain two copies of one n-gram followed by different letters.
 * A model that hashes k-grams cannot tell the copies apart once n ≥ k. Run on the trained
 * Hard-ALiBi transformer of `copy-length-generalisation` (same cache entry), and on the
 * constructed hash-copy transformer, whose knee must sit exactly at its own n: a control showing
 * the probe measures what it claims.
 * @module
 */
import { copyEvalBatch, duplicateNgramEvalBatch } from "../fixtures/copy_task.ts";
import { Prng } from "../fixtures/prng.ts";
import { dataSeed } from "../fixtures/seeds.ts";
import { hashCopyPredict } from "../models/hash_copy_transformer.ts";
import type { CheckResult, FigureData } from "../reports/schema.ts";
import {
  ALPHABET,
  COPY_TRAINING,
  copyArm,
  rowCopied,
  type ScoredRows,
  stringAccuracy,
  trainCopyArm,
} from "./copy_arms.ts";
import {
  acrossSeeds,
  type EvalContext,
  medianSeedRatioMargin,
  Phases,
  trainingSeeds,
} from "./harness.ts";
import {
  calibrationOf,
  check,
  median,
  NATIVE_NOTE,
  type Pilot,
  pilotOf,
  type Profile,
  round6,
  type Suite,
  type SuiteContext,
  type SuiteProfile,
} from "./suite.ts";

const ID = "ngram-hashing-probe";
const SOURCE = "Jelassi et al. 2024 (arXiv 2402.01032) §3.4, seed 002; CLAIMS.md §1.4 J6";

/** A profile's configuration. */
export interface ProbeConfig {
  /** String length of the probe (at most the training length, so no extrapolation is mixed in). */
  length: number;
  ns: number[];
  count: number;
  /** n of the constructed control model. */
  controlN: number;
  /** acc(n ≤ 2) must stay at or above this fraction of the no-duplicate accuracy. */
  shortRatio: number;
  /** acc(max n) must fall to or below this fraction. */
  longRatio: number;
  /** Increases of accuracy with n larger than this count as trend violations. */
  trendTolerance: number;
}

/** The profiles (the trained model is copy-length-generalisation's of the same profile). */
export const CONFIGS: Record<SuiteProfile, ProbeConfig> = {
  full: {
    length: 20,
    ns: [1, 2, 3, 4, 5, 6, 7, 8],
    count: 1024,
    controlN: 4,
    shortRatio: 0.9,
    longRatio: 0.75,
    trendTolerance: 0.05,
  },
  quick: {
    length: 20,
    ns: [1, 2, 3, 4, 5, 6, 7, 8],
    count: 1024,
    controlN: 4,
    shortRatio: 0.9,
    longRatio: 0.75,
    trendTolerance: 0.05,
  },
  // Tests only: strings of the smoke training length 8, the longest n that fits them (2n + 2 ≤ 8).
  smoke: {
    length: 8,
    ns: [1, 2, 3],
    count: 8,
    controlN: 2,
    shortRatio: 0.9,
    longRatio: 0.75,
    trendTolerance: 0.05,
  },
};

/**
 * The pilots on calibration seeds (the Hard-ALiBi arms of `copy-length-generalisation`'s pilot),
 * frozen: re-run with `deno task reproduce --profile quick --suite ngram-hashing-probe --seed 1000`.
 */
export const PILOTS: Partial<Record<Profile, Pilot>> = {
  quick: {
    seeds: [1000, 1001, 1002],
    engine: "native",
    decided: "1,024 probe strings per n (the 256 first used left J6-short inconclusive on the " +
      "5,000-step models of the calibration seeds: 0.937, bounds 0.894–0.983); thresholds kept " +
      "(CLAIMS.md J6). On the 8,000-step models every check passes; seed 1000's model breaks " +
      "almost entirely at n = 8 (0.009)." + NATIVE_NOTE + "J6-short 0.9627, J6-long 0.6047.",
    checks: {
      "J6-short": { measured: 0.972549, perSeed: [0.958702, 0.979331, 0.972549], actual: "pass" },
      "J6-long": { measured: 0.636275, perSeed: [0.00884956, 0.740157, 0.636275], actual: "pass" },
      "J6-trend": { measured: 0, actual: "pass" },
    },
  },
};

// Both profiles train copy-length-generalisation's Hard-ALiBi arm with the same recipe on the
// native engine, and the probe strings are the same: the same models, one pilot.
PILOTS.full = PILOTS.quick;

/** One seed's probe: accuracy without a duplicate, and with a duplicated n-gram per n. */
interface ProbeResult {
  baseline: number;
  byN: number[];
}

/** The smallest n whose accuracy is below `ratio` of the baseline, or null. */
export function knee(
  ns: readonly number[],
  acc: readonly number[],
  base: number,
  ratio = 0.9,
): number | null {
  const k = acc.findIndex((a) => a < ratio * base);
  return k < 0 ? null : ns[k];
}

/** Number of steps where accuracy rises with n by more than `tolerance`. */
export function trendViolations(acc: readonly number[], tolerance: number): number {
  let v = 0;
  for (let i = 1; i < acc.length; i++) if (acc[i] - acc[i - 1] > tolerance) v++;
  return v;
}

function probeBatches(c: ProbeConfig) {
  const context = 2 * c.length + 2;
  const base = copyEvalBatch(new Prng(dataSeed(ID, "test", 0)), {
    count: c.count,
    length: c.length,
    context,
    D: ALPHABET,
  });
  const dups = c.ns.map((n) =>
    duplicateNgramEvalBatch(new Prng(dataSeed(ID, "test", n)), {
      count: c.count,
      length: c.length,
      n,
      context,
      D: ALPHABET,
    })
  );
  return { context, base, dups };
}

/** String accuracy of the constructed control model (no training: weights set by hand). */
async function controlAccuracy(
  ctx: EvalContext,
  c: ProbeConfig,
  b: ScoredRows,
  context: number,
): Promise<number> {
  const pred = await hashCopyPredict({ n: c.controlN, D: ALPHABET }, b.input, context, {
    threads: ctx.threads,
    engine: ctx.engine,
  });
  let correct = 0;
  for (let r = 0; r < c.count; r++) if (rowCopied(pred, b, r, context)) correct++;
  return correct / c.count;
}

async function run(ctx: SuiteContext) {
  const c = CONFIGS[ctx.profile];
  const pilot = pilotOf(PILOTS, ctx);
  const copy = COPY_TRAINING[ctx.profile];
  const ha = copyArm("hard-alibi");
  const seeds = trainingSeeds(ctx, copy.seeds);
  const { context, base, dups } = probeBatches(c);
  const phases = new Phases();

  const accuracy = async (values: Map<string, Float32Array>, b: ScoredRows) =>
    (await stringAccuracy(ctx, ha, values, b, c.count, context)).accuracy;
  const probed = await acrossSeeds(
    seeds,
    phases,
    ha.id,
    (seed) => trainCopyArm(ctx, copy, ha, seed),
    {
      name: "probe",
      run: async (trained): Promise<ProbeResult> => {
        const baseline = await accuracy(trained.params, base);
        const byN: number[] = [];
        for (const d of dups) byN.push(await accuracy(trained.params, d));
        return { baseline, byN };
      },
    },
  );
  const { controlBase, control } = await phases.time("control", async () => {
    const controlBase = await controlAccuracy(ctx, c, base, context);
    const control: number[] = [];
    for (const d of dups) control.push(await controlAccuracy(ctx, c, d, context));
    return { controlBase, control };
  });

  const baseline = probed.values((r) => r.baseline);
  const base0 = median(baseline);
  const acc = c.ns.map((_, k) => probed.median((r) => r.byN[k]));
  const shortKs = c.ns.flatMap((n, k) => (n <= 2 ? [k] : []));
  // Per seed: the worst short duplicate, and the longest, each over that seed's baseline; the
  // checks take the median seed's ratio, bounded from its string counts.
  const short = medianSeedRatioMargin(
    probed.values((r) => Math.min(...shortKs.map((k) => r.byN[k]))),
    baseline,
    c.count,
  );
  const long = medianSeedRatioMargin(probed.values((r) => r.byN.at(-1)!), baseline, c.count);
  const nStar = knee(c.ns, acc, base0);
  const controlKnee = knee(c.ns, control, controlBase);
  const table = c.ns.map((n, k) => `n=${n}: ${acc[k].toFixed(3)}`).join(", ");
  const ratioRecord = (of: (r: ProbeResult) => number) =>
    probed.record((r) => (r.baseline > 0 ? of(r) / r.baseline : 0));
  const checks: CheckResult[] = [
    check({
      id: "J6-short",
      title: "Short duplicated n-grams (n ≤ 2) leave copying intact",
      source: `${SOURCE}: "roughly the same accuracy for n ≤ 4"`,
      metric: "min over n ≤ 2 of string accuracy / no-duplicate accuracy, median seed",
      measured: round6(short.ratio),
      margin: short.margin,
      threshold: c.shortRatio,
      direction: ">=",
      expected: "pass",
      evidence: "trained",
      calibration: calibrationOf(pilot, "J6-short"),
      detail: `No-duplicate accuracy ${base0.toFixed(3)} (median) at L = ${c.length}; median ` +
        `accuracy by n: ${table}. Threshold from CLAIMS.md J6.`,
      ...ratioRecord((r) => Math.min(...shortKs.map((k) => r.byN[k]))),
    }),
    check({
      id: "J6-long",
      title: `Long duplicated n-grams (n = ${c.ns.at(-1)}) break copying`,
      source: `${SOURCE}: accuracy "starts dropping" for duplicates of 5 or more tokens`,
      metric: `string accuracy at n = ${c.ns.at(-1)} / no-duplicate accuracy, median seed`,
      measured: round6(long.ratio),
      margin: long.margin,
      threshold: c.longRatio,
      direction: "<=",
      expected: "pass",
      evidence: "trained",
      calibration: calibrationOf(pilot, "J6-long"),
      detail: `Knee n* (first n below 0.9× baseline) = ${nStar ?? "none"}; the paper reports ~5 ` +
        "for its 160M model; no threshold on n* itself.",
      ...ratioRecord((r) => r.byN.at(-1)!),
    }),
    check({
      id: "J6-trend",
      title: "Accuracy does not rise with the duplicate's length",
      source: `${SOURCE}; CLAIMS.md J6 (one violation of ${c.trendTolerance} allowed)`,
      metric: `steps n → n+1 where accuracy rises by more than ${c.trendTolerance}`,
      measured: trendViolations(acc, c.trendTolerance),
      calibration: calibrationOf(pilot, "J6-trend"),
      threshold: 1,
      direction: "<=",
      expected: "pass",
      evidence: "trained",
      detail: table + ".",
    }),
    check({
      id: "J6-control",
      title:
        `Control: the constructed ${c.controlN}-gram hash-copy model's knee is at n = ${c.controlN}`,
      source: "Thm 2.3 construction (models/hash_copy_transformer.ts): it hashes n-grams exactly",
      metric: "knee of the constructed model (first n below 0.9× its no-duplicate accuracy)",
      measured: controlKnee,
      threshold: c.controlN,
      direction: "==",
      expected: "pass",
      evidence: "constructed",
      detail: `Constructed model: no-duplicate ${controlBase.toFixed(3)}; ` +
        c.ns.map((n, k) => `n=${n}: ${control[k].toFixed(3)}`).join(", ") + ".",
    }),
  ];
  const data: FigureData["data"] = [];
  c.ns.forEach((n, k) => {
    const { median, lo, hi } = probed.spread((r) => r.byN[k]);
    data.push({ model: "trained Hard-ALiBi", n, accuracy: median, lo, hi });
    data.push({
      model: `constructed (n = ${c.controlN})`,
      n,
      accuracy: round6(control[k]),
      lo: round6(control[k]),
      hi: round6(control[k]),
    });
  });
  const figures: FigureData[] = [{
    id: "accuracy-vs-duplicate-length",
    title: "Copy accuracy vs length of a duplicated n-gram",
    caption: `Strings of length ${c.length} with two copies of an n-gram followed by different ` +
      `letters, ${c.count} per n. Rule: the trained model's no-duplicate accuracy.`,
    mark: "line",
    data,
    x: { field: "n", title: "duplicated n-gram length n", type: "ordinal" },
    y: { field: "accuracy", title: "string accuracy", type: "quantitative" },
    color: { field: "model", title: "model", type: "nominal" },
    band: { lower: "lo", upper: "hi" },
    rules: [{ axis: "y", value: round6(base0), label: "no duplicate (trained)" }],
  }];
  return {
    config: {
      ...c,
      seedsUsed: seeds,
      calibration: pilot ?? null,
      trainedWith: "copy-length-generalisation",
    } as unknown as Record<
      string,
      unknown
    >,
    checks,
    metrics: {
      baseline: baseline.map(round6),
      accuracy: probed.results.map((r) => r.byN.map(round6)),
      knee: nStar,
      control: { baseline: round6(controlBase), accuracy: control.map(round6), knee: controlKnee },
    },
    figures,
    phases: phases.seconds,
  };
}

/** The `ngram-hashing-probe` suite. */
export const ngramHashingProbe: Suite = {
  id: ID,
  title: "n-gram hashing probe of a trained copying transformer",
  claim: "A trained copying transformer relies on n-gram lookups: its accuracy collapses once a " +
    "duplicated n-gram is long enough.",
  source: SOURCE,
  pilots: PILOTS,
  run,
};

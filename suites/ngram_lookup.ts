/**
 * Claim ("Repeat After Me", Jelassi et al. 2024, §3.5; seed 002; CLAIMS.md §1.4 J7): the
 * n-gram lookup task separates memory from summary. With the key after the string (suffix key)
 * the whole string must be stored: transformers generalise beyond the training length and GSSMs
 * do not. With the key before it (prefix key) the string can be matched as it streams by: the
 * GSSM generalises too, at least as well as a NoPE transformer. Both halves must hold.
 *
 * The arms are the copy suites' parameter-matched models (`copy_arms.ts`). Each trains on the
 * layouts its comparisons need — suffix: Hard-ALiBi and Mamba; prefix: Mamba and NoPE (4 layers)
 * — on strings of `trainMinLen..trainMaxLen` letters (`fixtures/ngram_lookup.ts`: n = k = 3, a
 * key that occurs once). String accuracy is the exact match of the k answer letters and the `.`
 * after them, teacher-forced, at lengths up to 3× the training maximum.
 *
 * Deviations: the paper trains on strings of ≤ 30 and tests to 100+; we train on 8–16 and check
 * at 32 (CLAIMS.md J7's scaled set-up). The paper's n and k are command-line flags its code does
 * not settle; we use 3 and 3. The key occurs once in s (the source samples any n-gram). The LSTM
 * is not an arm: in an exploration (calibration seed 1000, batch 128, 3,000 steps) it did not
 * learn the suffix layout in distribution (0.67 at |s| = 8), which would leave its suffix check
 * inconclusive, and its prefix curve (1.0, 0.97, 0.79, 0.49 at 8–32) sat below Mamba's.
 * @module
 */
import { ngramLookupBatch, ngramLookupExampleLength } from "../fixtures/ngram_lookup.ts";
import type { NgramKeyLayout } from "../fixtures/ngram_lookup.ts";
import { Prng } from "../fixtures/prng.ts";
import { dataSeed, deriveSeed } from "../fixtures/seeds.ts";
import type { CheckResult, FigureData } from "../reports/schema.ts";
import { ADAMW_DEFAULTS } from "../onnx/optim.ts";
import {
  ALPHABET,
  type ArmOptimisation,
  ARMS,
  armsWithIds,
  type CopyArm,
  stateLabel,
  stringAccuracy,
  trainArm,
  type TrainBudget,
  type TrainedCopyArm,
} from "./copy_arms.ts";
import {
  acrossSeeds,
  type EvalContext,
  lowestSeedMargin,
  medianGapMargin,
  medianSeedMargin,
  Phases,
  type SeedResults,
  trainingSeeds,
} from "./harness.ts";
import {
  calibrationOf,
  check,
  marginVerdict,
  type Pilot,
  pilotOf,
  type Profile,
  round6,
  type Suite,
  type SuiteContext,
  type SuiteProfile,
} from "./suite.ts";

const ID = "ngram-lookup";
const SOURCE = "Jelassi et al. 2024 (arXiv 2402.01032) §3.5, seed 002; CLAIMS.md §1.4 J7";
const LAYOUTS: readonly NgramKeyLayout[] = ["suffix", "prefix"];

/** A profile: the arms, their training on both layouts, the evaluation and its thresholds. */
export interface LookupConfig extends ArmOptimisation {
  /**
   * Per layout, the arms (`copy_arms.ts` ids) trained on it and their steps and peak learning
   * rate: the pairs the checks compare (suffix: Hard-ALiBi and the GSSMs; prefix: the GSSMs and
   * NoPE), so that no training is spent on a curve no check reads.
   */
  train: Readonly<Record<NgramKeyLayout, Readonly<Record<string, TrainBudget>>>>;
  /** Alphabet of s (the copy arms' 26 letters: their vocabulary of 30 tokens). */
  D: number;
  trainMinLen: number;
  trainMaxLen: number;
  seeds: number;
  /** |s| evaluated; they include `gateLength` and `checkLength`. */
  evalLengths: number[];
  evalCount: number;
  checkLength: number;
  /** Held-out accuracy at `gateLength` recorded every `every` steps. */
  curve: { every: number; count: number };
  /** |s| at which the validity gate asks that every trained arm has learned the lookup. */
  gateLength: number;
  /** Validity gate: every trained arm, layout and seed at `gateLength`, at least. */
  gate: number;
  /** Suffix: Hard-ALiBi at `checkLength`, at least. */
  haSuffix: number;
  /** Suffix: each GSSM at `checkLength`, at most. */
  gssmSuffix: number;
  /** Prefix: the best GSSM at `checkLength`, at least. */
  gssmPrefix: number;
  /** Prefix: the best GSSM minus NoPE at `checkLength`, at least. */
  prefixVsNope: number;
}

const THRESHOLDS = {
  gate: 0.9,
  haSuffix: 0.8,
  gssmSuffix: 0.3,
  gssmPrefix: 0.9,
  prefixVsNope: -0.05,
};

// Budgets, from an exploration on calibration seed 1000 (native engine, lr 3e-3, |s| 8–16, one
// example per 25-token row) then the pilot ({@linkcode PILOTS}):
// - Batch 32 taught Hard-ALiBi neither layout in 3,000 steps (suffix 0.01 at |s| = 8) and Mamba
//   only the prefix one; batch 128 (4× the answers per step) taught both. Hard-ALiBi trains at ≈
//   31 steps/s, NoPE (4 layers) ≈ 21, Mamba ≈ 6 on 2 cores.
// - Suffix: Hard-ALiBi learns by step 500 on every pilot seed; 3,000 steps (a cosine schedule of
//   500 did not learn at all) leave it at 1.0. Mamba stays on a plateau for 500–1,000 steps, then
//   learns the short strings: 1,500 steps (4 minutes a seed) reach 0.94 and 0.82 at |s| = 8 on
//   two seeds, one never leaves the plateau; 3,000 steps (0.99 at 8) would cost 24 minutes for 3
//   seeds, beyond the full profile's 30.
// - Prefix: Mamba learns by step 500 (1.0 at 8); NoPE needs 1,500–2,000 steps, hence 3,000.
const FULL: LookupConfig = {
  train: {
    suffix: {
      "hard-alibi": { steps: 3000, lr: 3e-3 },
      mamba: { steps: 1500, lr: 3e-3 },
    },
    prefix: {
      mamba: { steps: 1000, lr: 3e-3 },
      nope: { steps: 3000, lr: 3e-3 },
    },
  },
  D: ALPHABET,
  trainMinLen: 8,
  trainMaxLen: 16,
  // One example per row: the longest training example (prefix, |s| = 16) is 26 tokens.
  context: 25,
  batch: 128,
  warmupSteps: 100,
  minLrRatio: 0.1,
  optimizer: { ...ADAMW_DEFAULTS, weightDecay: 0.1, clipNorm: 1.0 },
  seeds: 3,
  evalLengths: [8, 16, 24, 32, 48],
  evalCount: 512,
  gateLength: 8,
  checkLength: 32,
  curve: { every: 250, count: 128 },
  ...THRESHOLDS,
};

/** The profiles. */
export const CONFIGS: Record<SuiteProfile, LookupConfig> = {
  full: FULL,
  quick: {
    ...FULL,
    train: { suffix: { "hard-alibi": FULL.train.suffix["hard-alibi"] }, prefix: {} },
  },
  // Tests only: every arm the checks compare, 3 steps, 8 strings per length.
  smoke: {
    ...FULL,
    train: {
      suffix: { "hard-alibi": { steps: 3, lr: 1e-3 }, mamba: { steps: 3, lr: 1e-3 } },
      prefix: { mamba: { steps: 3, lr: 1e-3 }, nope: { steps: 3, lr: 1e-3 } },
    },
    batch: 4,
    warmupSteps: 1,
    seeds: 1,
    evalLengths: [8, 16, 32],
    evalCount: 8,
    curve: { every: 3, count: 8 },
  },
};

/** The pilots on calibration seeds, frozen: `deno task reproduce --suite ngram-lookup --seed 1000`. */
export const PILOTS: Partial<Record<Profile, Pilot>> = {
  full: {
    seeds: [1000, 1001, 1002],
    engine: "native",
    decided: "Budgets at batch 128 (the exploration below) and CLAIMS.md J7's thresholds kept; " +
      "1,910 s for 3 seeds × 4 pairs. Hard-ALiBi learns the suffix layout by step 500 on every " +
      "seed and generalises (0.992 at |s| = 32, 0.98 at 48): J7-suffix-HA passes. Mamba, suffix " +
      "key, 1,500 steps: 0.94, 0, 0.82 at |s| = 8 (seed 1001 never left the plateau), so " +
      "J7-suffix-mamba is inconclusive though every seed is ≤ 0.06 at 32. Mamba, prefix key, " +
      "1,000 steps: 1.0 at 8 on every seed (learned by step 500) but 0.45, 0.76, 0.98 at 32 " +
      "(median 0.764 against ≥ 0.9), so J7-prefix-GSSM fails and with it J7: the prefix " +
      'layout\'s "perfect length generalization" is not reproduced at this scale (an ' +
      "exploration at 3,000 steps gave 0.66 at 32, no closer). NoPE, prefix key, 3,000 steps: " +
      "0.996, 0.92, 0.99 at 8, the second's bound under the gate, so J7-prefix-vs-NoPE " +
      "(+0.756) is inconclusive.",
    checks: {
      "J7-gate": { measured: 0, perSeed: [0.9375, 0, 0.820313], actual: "fail" },
      "J7-suffix-HA": {
        measured: 0.992188,
        perSeed: [0.992188, 0.998047, 0.992188],
        actual: "pass",
      },
      "J7-suffix-mamba": {
        measured: 0.0214844,
        perSeed: [0.0566406, 0, 0.0214844],
        actual: "inconclusive",
      },
      "J7-prefix-GSSM": {
        measured: 0.763672,
        perSeed: [0.453125, 0.763672, 0.982422],
        actual: "fail",
      },
      "J7-prefix-vs-NoPE": {
        measured: 0.755859,
        perSeed: [0.162109, 0.755859, 0.982422],
        actual: "inconclusive",
      },
      J7: { measured: 3, actual: "fail" },
    },
  },
  quick: {
    seeds: [1000, 1001, 1002],
    engine: "native",
    decided: "The full profile's Hard-ALiBi suffix models (the same cache entries): every seed " +
      "learns and generalises, 0.992 at |s| = 32. Quick trains that pair only: the other pairs " +
      "cost ≈ 4 minutes a seed each on 2 cores, and the prefix GSSM's accuracy at 32 spread " +
      "0.45–0.98 over the pilot's seeds, too wide a spread for CI's pre-registered verdict.",
    checks: {
      "J7-gate": { measured: 0.998047, perSeed: [1, 0.998047, 1], actual: "pass" },
      "J7-suffix-HA": {
        measured: 0.992188,
        perSeed: [0.992188, 0.998047, 0.992188],
        actual: "pass",
      },
    },
  },
};

/** The arms a profile trains on any layout, in `ARMS` order (figures list them so). */
export function lookupArms(c: LookupConfig): CopyArm[] {
  return armsWithIds(ARMS, LAYOUTS.flatMap((layout) => Object.keys(c.train[layout])));
}

/** Trains (or loads) one arm on one layout. */
function trainLookupArm(
  ctx: SuiteContext,
  c: LookupConfig,
  arm: CopyArm,
  layout: NgramKeyLayout,
  seed: number,
): Promise<TrainedCopyArm> {
  const task = { layout, D: c.D };
  const longest = ngramLookupExampleLength(c.trainMaxLen, task);
  if (longest > c.context + 1) {
    throw new RangeError(
      `Cannot train ${ID} as context must hold an example of the training maximum (${
        longest - 1
      } tokens): current value is ${c.context}`,
    );
  }
  const budget = c.train[layout][arm.id];
  const trainSeed = dataSeed(`${ID} ${layout}`, "train", seed);
  const curveContext = ngramLookupExampleLength(c.gateLength, task) - 1;
  return trainArm(ctx, {
    suite: ID,
    task: `ngram-${layout}`,
    arm,
    seed,
    key: {
      layout,
      D: c.D,
      trainMinLen: c.trainMinLen,
      trainMaxLen: c.trainMaxLen,
      context: c.context,
      batch: c.batch,
      lr: budget.lr,
      warmupSteps: c.warmupSteps,
      minLrRatio: c.minLrRatio,
      optimizer: c.optimizer,
      curve: c.curve,
    },
    budget,
    training: c,
    rows: (step) =>
      ngramLookupBatch(new Prng(deriveSeed("batch", trainSeed, step)), {
        ...task,
        count: c.batch,
        context: c.context,
        minLen: c.trainMinLen,
        maxLen: c.trainMaxLen,
      }),
    curve: {
      every: c.curve.every,
      count: c.curve.count,
      context: curveContext,
      rows: ngramLookupBatch(new Prng(dataSeed(`${ID} ${layout}`, "valid", c.gateLength)), {
        ...task,
        count: c.curve.count,
        context: curveContext,
        minLen: c.gateLength,
        maxLen: c.gateLength,
      }),
    },
  });
}

/** String accuracy per evaluation length of one trained arm on one layout. */
async function evaluateLengths(
  ctx: EvalContext,
  c: LookupConfig,
  arm: CopyArm,
  layout: NgramKeyLayout,
  values: Map<string, Float32Array>,
): Promise<number[]> {
  const out: number[] = [];
  for (const L of c.evalLengths) {
    const context = ngramLookupExampleLength(L, { layout, D: c.D }) - 1;
    const rows = ngramLookupBatch(new Prng(dataSeed(`${ID} ${layout}`, "test", L)), {
      layout,
      D: c.D,
      count: c.evalCount,
      context,
      minLen: L,
      maxLen: L,
    });
    out.push((await stringAccuracy(ctx, arm, values, rows, c.evalCount, context)).accuracy);
  }
  return out;
}

async function run(ctx: SuiteContext) {
  const c = CONFIGS[ctx.profile];
  const pilot = pilotOf(PILOTS, ctx);
  const arms = lookupArms(c);
  const seeds = trainingSeeds(ctx, c.seeds);
  const phases = new Phases();
  // The (layout, arm) pairs trained, layout by layout, arms in `ARMS` order.
  const trained = LAYOUTS.flatMap((layout) =>
    arms.filter((a) => a.id in c.train[layout]).map((arm) => ({ layout, arm }))
  );
  // `${layout} ${arm}` → seed → accuracy per length
  const acc = new Map<string, SeedResults<number[]>>();
  const curves: Record<string, { step: number; accuracy: number }[][]> = {};
  for (const { layout, arm } of trained) {
    const key = `${layout} ${arm.id}`;
    const models: TrainedCopyArm[] = [];
    acc.set(
      key,
      await acrossSeeds(seeds, phases, key, async (seed) => {
        const t = await trainLookupArm(ctx, c, arm, layout, seed);
        models.push(t);
        return t;
      }, {
        name: "eval",
        run: (t) => evaluateLengths(ctx, c, arm, layout, t.params),
      }),
    );
    curves[key] = models.map((t) => t.curve);
  }
  const at = (L: number) => {
    const k = c.evalLengths.indexOf(L);
    return (s: number[]) => s[k];
  };
  const has = (layout: NgramKeyLayout, arm: CopyArm | undefined): arm is CopyArm =>
    arm !== undefined && acc.has(`${layout} ${arm.id}`);
  const of = (layout: NgramKeyLayout, arm: CopyArm) => acc.get(`${layout} ${arm.id}`)!;
  const medianAt = (layout: NgramKeyLayout, arm: CopyArm, L: number) =>
    of(layout, arm).median(at(L));
  const Lg = c.gateLength;
  const Ltr = c.trainMaxLen;
  const Lc = c.checkLength;
  // A profile may train fewer pairs (pilots explore); the checks of missing pairs are left out.
  const ha = arms.find((a) => a.id === "hard-alibi");
  const nope = arms.find((a) => a.id === "nope");
  const gssms = arms.filter((a) => a.family === "gssm");
  type Pair = { layout: NgramKeyLayout; arm: CopyArm };
  const lowest = (t: Pair) => Math.min(...of(t.layout, t.arm).values(at(Lg)));
  const weakest = trained.reduce((w, t) => (lowest(t) < lowest(w) ? t : w));
  // A pair has learned the lookup when its lowest seed's bound clears the gate at |s| = Lg.
  const learned = (t: Pair) =>
    marginVerdict(
      lowestSeedMargin(of(t.layout, t.arm).values(at(Lg)), c.evalCount),
      ">=",
      c.gate,
    ) ===
      "pass";
  const pairName = (t: Pair) => `${t.arm.label} (${t.layout} key)`;
  // Each check is gated on the pairs it reads: a pair that has not learned the lookup in
  // distribution makes those checks inconclusive, and the checks of the other pairs stand.
  const gatedOn = (...pairs: Pair[]) => {
    const unlearned = pairs.filter((t) => !learned(t));
    return unlearned.length
      ? `${unlearned.map(pairName).join(", ")} did not learn the lookup at |s| = ${Lg} on every ` +
        `seed (J7-gate)`
      : undefined;
  };
  const budgets = trained.map(({ layout, arm }) => {
    const b = c.train[layout][arm.id];
    return `${arm.label} ${layout} ${b.steps} steps at lr ${b.lr}`;
  }).join(", ");
  const inDistribution = trained.map(({ layout, arm }) =>
    `${arm.label} ${layout} ${medianAt(layout, arm, Lg).toFixed(3)} at ${Lg}, ${
      medianAt(layout, arm, Ltr).toFixed(3)
    } at ${Ltr}`
  ).join("; ");
  const unlearned = trained.filter((t) => !learned(t));
  const gateResult = check({
    id: "J7-gate",
    title: `Validity gate: every arm has learned the lookup on its layout (strings of ${Lg} ` +
      "letters, in the training range), every seed",
    source: `${SOURCE}: the models are trained on the task, then tested beyond its lengths`,
    metric: `lowest string accuracy at |s| = ${Lg} over arms, layouts and seeds (${
      pairName(weakest)
    })`,
    measured: round6(lowest(weakest)),
    margin: lowestSeedMargin(of(weakest.layout, weakest.arm).values(at(Lg)), c.evalCount),
    threshold: c.gate,
    direction: ">=",
    expected: "pass",
    evidence: "trained",
    calibration: calibrationOf(pilot, "J7-gate"),
    detail: `In distribution (median) — ${inDistribution}. Budgets: ${budgets}. ` +
      (unlearned.length
        ? `Not learned on every seed: ${unlearned.map(pairName).join(", ")}; the checks that ` +
          "read them are inconclusive, not failed, and the others stand."
        : "Every pair learned: every check below stands."),
    ...of(weakest.layout, weakest.arm).record(at(Lg)),
  });
  const checks: CheckResult[] = [gateResult];
  const halves: CheckResult[] = [];
  const record = (layout: NgramKeyLayout, arm: CopyArm) => of(layout, arm).record(at(Lc));
  if (has("suffix", ha)) {
    halves.push(check({
      inconclusive: gatedOn({ layout: "suffix", arm: ha }),
      id: "J7-suffix-HA",
      title: `Suffix key: Hard-ALiBi looks up keys in strings ${Lc / Ltr}× the training maximum`,
      source: `${SOURCE}: with the key after the string, transformers "degrade only slightly"`,
      metric: `median string accuracy at |s| = ${Lc}, ${c.evalCount} strings`,
      measured: round6(medianAt("suffix", ha, Lc)),
      margin: medianSeedMargin(of("suffix", ha).values(at(Lc)), c.evalCount),
      threshold: c.haSuffix,
      direction: ">=",
      expected: "pass",
      evidence: "trained",
      calibration: calibrationOf(pilot, "J7-suffix-HA"),
      detail: `Seeds ${seeds.join(", ")}. Threshold as CLAIMS.md J7 proposes.`,
      ...record("suffix", ha),
    }));
  }
  for (const g of gssms.filter((g) => has("suffix", g))) {
    halves.push(check({
      inconclusive: gatedOn({ layout: "suffix", arm: g }),
      id: `J7-suffix-${g.id}`,
      title: `Suffix key: ${g.label} fails beyond the training length`,
      source: `${SOURCE}: GSSMs "perform poorly beyond their training distribution"`,
      metric: `median string accuracy at |s| = ${Lc}, ${c.evalCount} strings`,
      measured: round6(medianAt("suffix", g, Lc)),
      margin: medianSeedMargin(of("suffix", g).values(at(Lc)), c.evalCount),
      threshold: c.gssmSuffix,
      direction: "<=",
      expected: "pass",
      evidence: "trained",
      calibration: calibrationOf(pilot, `J7-suffix-${g.id}`),
      detail:
        `Seeds ${seeds.join(", ")}; state ${stateLabel(g)}, ${
          g.paramCount.toLocaleString("en-US")
        } parameters against ${arms[0].label}'s ${arms[0].paramCount.toLocaleString("en-US")}. ` +
        "Threshold" +
        " as CLAIMS.md J7 proposes.",
      ...record("suffix", g),
    }));
  }
  const prefixGssms = gssms.filter((g) => has("prefix", g));
  if (prefixGssms.length) {
    const best = prefixGssms.reduce((b, g) =>
      medianAt("prefix", g, Lc) > medianAt("prefix", b, Lc) ? g : b
    );
    halves.push(check({
      inconclusive: gatedOn({ layout: "prefix", arm: best }),
      id: "J7-prefix-GSSM",
      title: `Prefix key: the best GSSM looks up keys in strings ${Lc / Ltr}× the training maximum`,
      source: `${SOURCE}: with the key first, "GSSMs achieve perfect length-generalization"`,
      metric:
        `median string accuracy at |s| = ${Lc} of the best GSSM (${best.label}), ${c.evalCount} strings`,
      measured: round6(medianAt("prefix", best, Lc)),
      margin: medianSeedMargin(of("prefix", best).values(at(Lc)), c.evalCount),
      threshold: c.gssmPrefix,
      direction: ">=",
      expected: "pass",
      evidence: "trained",
      calibration: calibrationOf(pilot, "J7-prefix-GSSM"),
      detail: `At |s| = ${Lc}, prefix key: ${
        trained.filter((t) => t.layout === "prefix").map(({ arm }) =>
          `${arm.label} ${medianAt("prefix", arm, Lc).toFixed(3)}`
        ).join(", ")
      }. Threshold as CLAIMS.md J7 proposes.`,
      ...record("prefix", best),
    }));
    if (has("prefix", nope)) {
      const gap = of("prefix", best).values(at(Lc));
      const nopeAt = of("prefix", nope).values(at(Lc));
      halves.push(check({
        inconclusive: gatedOn({ layout: "prefix", arm: best }, { layout: "prefix", arm: nope }),
        id: "J7-prefix-vs-NoPE",
        title: "Prefix key: the best GSSM does at least as well as the NoPE transformer",
        source: `${SOURCE}: with the key first, GSSMs beat NoPE and ALiBi transformers`,
        metric: `best GSSM (${best.label}) minus NoPE, median string accuracy at |s| = ${Lc}`,
        measured: round6(medianAt("prefix", best, Lc) - medianAt("prefix", nope, Lc)),
        margin: medianGapMargin(gap, nopeAt, c.evalCount),
        threshold: c.prefixVsNope,
        direction: ">=",
        expected: "pass",
        evidence: "trained",
        calibration: calibrationOf(pilot, "J7-prefix-vs-NoPE"),
        detail: "CLAIMS.md J7: GSSM ≥ T-NoPE − 0.05.",
        seeds: [...seeds],
        perSeed: gap.map((v, i) => round6(v - nopeAt[i])),
      }));
    }
  }
  checks.push(...halves);
  // J7 judges the pair of results, so only a profile that trains every side of both comparisons
  // (quick trains the two that succeed) gets it; its halves' checks stand on their own anyway.
  const bothHalves = has("suffix", ha) && gssms.some((g) => has("suffix", g)) &&
    prefixGssms.length > 0 && has("prefix", nope);
  const missed = halves.filter((h) => h.actual !== "pass");
  const failed = halves.filter((h) => h.actual === "fail");
  if (bothHalves) {
    checks.push(check({
      // A half that fails refutes the pair; one that is only inconclusive leaves it open.
      inconclusive: failed.length === 0 && missed.length
        ? `${missed.map((h) => h.id).join(", ")} inconclusive, none failed`
        : undefined,
      id: "J7",
      title: "Both halves hold: the gap between the families follows the task's shape",
      source: `${SOURCE}: "GSSMs seem to be memory limited, but can be effective when the ` +
        `tasks only require a summary of the inputs"`,
      metric: "checks of either half that do not pass",
      measured: missed.length,
      threshold: 0,
      direction: "==",
      expected: "pass",
      evidence: "trained",
      calibration: calibrationOf(pilot, "J7"),
      detail: missed.length
        ? `Not passing: ${missed.map((h) => `${h.id} (${h.actual})`).join(", ")}.`
        : `All of ${halves.map((h) => h.id).join(", ")} pass.`,
    }));
  }

  const labels = new Map(arms.map((a) => [a.id, `${a.label} (state ${stateLabel(a)})`]));
  const data: FigureData["data"] = [];
  for (const { layout, arm } of trained) {
    for (const L of c.evalLengths) {
      const { median, lo, hi } = of(layout, arm).spread(at(L));
      data.push({
        key: `${layout} key`,
        arm: labels.get(arm.id)!,
        length: L,
        accuracy: median,
        lo,
        hi,
      });
    }
  }
  const figures: FigureData[] = [{
    id: "accuracy-vs-length",
    title: "n-gram lookup: string accuracy vs string length, key after (suffix) or before (prefix)",
    caption:
      `Trained on |s| ${c.trainMinLen}–${Ltr} (shaded), n = 3, k = 3; median over seeds ${
        seeds.join(", ")
      }, band min–max; ${c.evalCount} strings per point, teacher-forced exact match of the answer ` +
      "and its `.`. The legend gives each arm's state: a GSSM's is fixed, a transformer's KV " +
      "cache grows with the string.",
    mark: "line",
    data,
    x: { field: "length", title: "string length |s|", type: "quantitative" },
    y: { field: "accuracy", title: "string accuracy", type: "quantitative" },
    color: { field: "arm", title: "arm", type: "nominal" },
    column: { field: "key", title: "key", type: "nominal" },
    band: { lower: "lo", upper: "hi" },
    spans: [{ from: c.trainMinLen, to: Ltr, label: "training" }],
  }];
  return {
    config: {
      ...c,
      seedsUsed: seeds,
      calibration: pilot ?? null,
      arms: arms.map((a) => ({
        id: a.id,
        config: a.config,
        params: a.paramCount,
        state: stateLabel(a),
      })),
    } as unknown as Record<string, unknown>,
    checks,
    metrics: {
      accuracy: Object.fromEntries(
        [...acc].map(([k, r]) => [k, r.results.map((s) => s.map(round6))]),
      ),
      evalLengths: c.evalLengths,
      curves,
    },
    figures,
    phases: phases.seconds,
  };
}

/** The `ngram-lookup` suite. */
export const ngramLookup: Suite = {
  id: ID,
  title: "n-gram lookup: suffix key vs prefix key",
  claim: "With the key after the string, a Hard-ALiBi transformer looks up n-grams in strings " +
    "longer than it was trained on and a GSSM of its size does not; with the key first, the " +
    "GSSM does too, as well as a NoPE transformer.",
  source: SOURCE,
  pilots: PILOTS,
  run,
};

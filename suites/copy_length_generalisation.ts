/**
 * Claim ("Repeat After Me", Jelassi et al. 2024, §3.3; seed 002; CLAIMS.md §1.4 J4):
 * transformers trained to copy short strings copy much longer ones; Hard-ALiBi generalises best
 * ("almost perfect length generalization") and RoPE worst; GSSMs (Mamba, LSTM) of the same size
 * learn the task in distribution but their accuracy "drops to zero almost immediately" beyond it.
 *
 * The arms and their training are `suites/copy_arms.ts` (the probe suite reuses them); this file
 * is the evaluation: string accuracy at lengths up to 4× the training length, a validity gate on
 * the training length, and the length checks behind it.
 * @module
 */
import { copyEvalBatch } from "../fixtures/copy_task.ts";
import { Prng } from "../fixtures/prng.ts";
import { dataSeed } from "../fixtures/seeds.ts";
import type { CheckResult, FigureData } from "../reports/schema.ts";
import {
  ALPHABET,
  armBudget,
  COPY_TRAINING,
  type CopyArm,
  copyArm,
  type CopyTraining,
  stringAccuracy,
  trainCopyArm,
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
  validityGate,
} from "./harness.ts";
import {
  calibrationOf,
  NATIVE_NOTE,
  type Pilot,
  pilotOf,
  type Profile,
  round6,
  type Suite,
  type SuiteContext,
  type SuiteProfile,
} from "./suite.ts";

const ID = "copy-length-generalisation";
const SOURCE = "Jelassi et al. 2024 (arXiv 2402.01032) §3.3, seed 002; CLAIMS.md §1.4 J4";

/** A profile's configuration: the arms' training, then the evaluation and its thresholds. */
export interface CopyConfig extends CopyTraining {
  evalLengths: number[];
  evalCount: number;
  /** Validity gate: an arm must reach this string accuracy at the training length. */
  gate: number;
  /** Hard-ALiBi at 2× the training length. */
  haAt2x: number;
  /** Hard-ALiBi at 4× the training length. */
  haAt4x: number;
  /** Each GSSM at 2× the training length: at most this. */
  gssmAt2x: number;
  /** Hard-ALiBi minus the best GSSM at 2× the training length: at least this. */
  gapAt2x: number;
}

const EVALUATION = {
  evalLengths: [10, 20, 30, 40, 60, 80],
  // 1,024 strings per length: at 256 a proportion near 0.75 has a 95% half-width of 0.05, too
  // wide to tell the 4× accuracies of the calibration seeds (0.62–0.65) from the 0.7 threshold.
  evalCount: 1024,
  gate: 0.9,
  haAt2x: 0.9,
  haAt4x: 0.7,
  gssmAt2x: 0.2,
  gapAt2x: 0.6,
};

/** The profiles: quick trains the primary arm with one seed and evaluates fewer lengths. */
export const CONFIGS: Record<SuiteProfile, CopyConfig> = {
  full: { ...COPY_TRAINING.full, ...EVALUATION },
  quick: { ...COPY_TRAINING.quick, ...EVALUATION, evalLengths: [10, 20, 40, 80] },
  // Tests only: the training length, 2× and 4× it, 8 strings each.
  smoke: { ...COPY_TRAINING.smoke, ...EVALUATION, evalLengths: [8, 16, 32], evalCount: 8 },
};

/**
 * The pilots on calibration seeds, frozen: re-run with `deno task reproduce --profile quick
 * --suite copy-length-generalisation --seed 1000` (full: `--profile full --engine native`).
 */
export const PILOTS: Partial<Record<Profile, Pilot>> = {
  quick: {
    seeds: [1000, 1001, 1002],
    engine: "native",
    decided: "Hard-ALiBi trains 8,000 steps at lr 3e-3: with 5,000 (the budget first piloted on " +
      "seed 0), calibration seed 1001 had not learned the task (0.367 at L = 20; the others " +
      "0.980, 0.992 at L = 20 and 0.617, 0.645 at 4×). 1,024 strings per length, as 256 left " +
      "intervals too wide to judge. Thresholds kept (CLAIMS.md J4). At 8,000 steps every seed " +
      "learns the task and 2× passes, but 4× does not: 0.796, 0.461, 0.520. The 4× claim is not " +
      "reproduced at this scale, and the check expects that verdict." + NATIVE_NOTE +
      "gate 0.9873, 2× 0.9180, 4× 0.5195 (0.796, 0.461, 0.520). The models are the full " +
      "profile's Hard-ALiBi models (same recipe and engine), bit for bit.",
    checks: {
      "J4-gate": { measured: 0.988281, perSeed: [0.988281, 0.996094, 0.995117], actual: "pass" },
      "J4-HA-2x": { measured: 0.93457, perSeed: [0.93457, 0.93457, 0.952148], actual: "pass" },
      "J4-HA-4x": { measured: 0.517578, perSeed: [0.662109, 0.487305, 0.517578], actual: "fail" },
    },
  },
};

// The full profile's pilot ran on the native engine (a Mamba train step ≈ 100 ms there, ≈ 420 ms
// portable), as quick's: both profiles train the same Hard-ALiBi models.
PILOTS.full = {
  seeds: [1000, 1001, 1002],
  engine: "native",
  decided: "Budgets as armBudgets: Hard-ALiBi as quick (8,000 steps at lr 3e-3), NoPE and ALiBi " +
    "3,000 at 3e-3, RoPE 3,000 at 1e-3, Mamba and LSTM 6,000 at 3e-3. At these budgets the " +
    "GSSMs do not learn the task in distribution on the calibration seeds: at L = 20 Mamba " +
    "0.994, 0.000, 0.201 and LSTM 0.044, 0.024, 0.017 (NoPE 0.628 on seed 1000, 0.996 and 0.998 " +
    "on the others). Mamba's held-out curve was still rising when its budget ran out (median " +
    "0.28 over its last points), LSTM's flat near 0.02. The gate fails, so every length check is " +
    "inconclusive, and the profile expects that. Not extended: the suite already took 91 min on " +
    "2 cores (5,480 s; the issue's full budget is 30), and Mamba would need well over 6,000 " +
    "steps per seed. Behind the gate, Hard-ALiBi measured 0.935 at 2× and 0.518 at 4×, as quick. " +
    "Re-run on 2026-12-07 after two speed-ups that keep every bit (the Mamba layer's glue as " +
    "native ops, the LSTM's input projection split once): 2,800 s, every value the same.",
  checks: {
    "J4-gate": { measured: 0, perSeed: [0.994141, 0, 0.201172], actual: "fail" },
    "J4-HA-2x": {
      measured: 0.93457,
      perSeed: [0.93457, 0.93457, 0.952148],
      actual: "inconclusive",
    },
    "J4-HA-4x": {
      measured: 0.517578,
      perSeed: [0.662109, 0.487305, 0.517578],
      actual: "inconclusive",
    },
    "J4-mamba-2x": { measured: 0, perSeed: [0, 0, 0], actual: "inconclusive" },
    "J4-lstm-2x": { measured: 0, perSeed: [0, 0, 0], actual: "inconclusive" },
    "J4-gap": { measured: 0.93457, perSeed: [0.93457, 0.93457, 0.952148], actual: "inconclusive" },
    "J4-HA-best": { measured: 0.517578, actual: "inconclusive" },
  },
};

/** Accuracy per evaluation length of one trained arm. */
async function evaluateLengths(
  ctx: EvalContext,
  c: CopyConfig,
  arm: CopyArm,
  values: Map<string, Float32Array>,
): Promise<number[]> {
  const out: number[] = [];
  for (const L of c.evalLengths) {
    const context = 2 * L + 2;
    // Scored as docs/claims.md §1.1 scores copying: the answer and its EOS, exact match.
    const batch = copyEvalBatch(new Prng(dataSeed(ID, "test", L)), {
      count: c.evalCount,
      length: L,
      context,
      D: ALPHABET,
      scoreEos: true,
    });
    out.push((await stringAccuracy(ctx, arm, values, batch, c.evalCount, context)).accuracy);
  }
  return out;
}

async function run(ctx: SuiteContext) {
  const c = CONFIGS[ctx.profile];
  const pilot = pilotOf(PILOTS, ctx);
  const arms = c.arms.map(copyArm);
  const seeds = trainingSeeds(ctx, c.seeds);
  const phases = new Phases();
  const acc = new Map<string, SeedResults<number[]>>(); // arm → seed → accuracy per length
  for (const arm of arms) {
    acc.set(
      arm.id,
      await acrossSeeds(seeds, phases, arm.id, (seed) => trainCopyArm(ctx, c, arm, seed), {
        name: "eval",
        run: (trained) => evaluateLengths(ctx, c, arm, trained.params),
      }),
    );
  }
  const at = (L: number) => {
    const k = c.evalLengths.indexOf(L);
    return (s: number[]) => s[k];
  };
  const medianAt = (armId: string, L: number) => acc.get(armId)!.median(at(L));
  const Ltr = c.trainMaxLen;
  const [ha, ...rest] = arms;
  const others = rest.filter((a) => a.family === "transformer");
  const gssms = rest.filter((a) => a.family === "gssm");
  const inDistribution = arms.map((a) => {
    const b = armBudget(c, a.id);
    return `${a.label} ${medianAt(a.id, Ltr).toFixed(3)} (${b.steps} steps, lr ${b.lr})`;
  }).join(", ");
  // The gate holds when every trained arm copies strings of the training length on every seed
  // (a median would hide a seed that never learned, as calibration seed 1001 did); it is judged
  // on the weakest arm's weakest seed, so a model that did not learn the task cannot fail a
  // generalisation check.
  const lowestAt = (a: CopyArm) => Math.min(...acc.get(a.id)!.values(at(Ltr)));
  const weakest = arms.reduce((w, a) => (lowestAt(a) < lowestAt(w) ? a : w));
  const notLearned = arms.filter((a) => lowestAt(a) < c.gate);
  const gate = validityGate(
    {
      id: "J4-gate",
      title: `Validity gate: every arm copies strings of the training length ${Ltr}, every seed`,
      source: `${SOURCE}: "all models solve the task in distribution"`,
      metric: `lowest string accuracy at L = ${Ltr} over arms and seeds (${weakest.label})`,
      measured: round6(lowestAt(weakest)),
      margin: lowestSeedMargin(acc.get(weakest.id)!.values(at(Ltr)), c.evalCount),
      threshold: c.gate,
      direction: ">=",
      expected: "pass",
      evidence: "trained",
      calibration: calibrationOf(pilot, "J4-gate"),
      detail: `In distribution (median): ${inDistribution}. If the gate fails, the length ` +
        "checks below are inconclusive, not failed.",
      ...acc.get(weakest.id)!.record(at(Ltr)),
    },
    notLearned.length
      ? `${
        notLearned.map((a) => `${a.label} (${armBudget(c, a.id).steps} steps)`).join(", ")
      } did not learn to copy strings of the training length on every seed`
      : undefined,
  );
  const checks: CheckResult[] = [gate.result];
  for (const [mult, threshold] of [[2, c.haAt2x], [4, c.haAt4x]] as const) {
    const L = mult * Ltr;
    checks.push(gate.check({
      id: `J4-HA-${mult}x`,
      title: `Hard-ALiBi copies strings ${mult}× longer than it was trained on`,
      source: `${SOURCE}: Hard-ALiBi "almost perfect length generalization"`,
      metric: `median string accuracy at L = ${L}, ${c.evalCount} strings`,
      measured: round6(medianAt(ha.id, L)),
      margin: medianSeedMargin(acc.get(ha.id)!.values(at(L)), c.evalCount),
      threshold,
      direction: ">=",
      expected: "pass",
      evidence: "trained",
      calibration: calibrationOf(pilot, `J4-HA-${mult}x`),
      detail: `Seeds ${seeds.join(", ")}. Thresholds as CLAIMS.md J4 proposes (≥ 0.9 at 2×, ` +
        `≥ 0.7 at 4×); budget from the pilot on calibration seeds (config.calibration).` +
        (mult === 4
          ? " The 4× accuracy varies more between seeds than within one (0.46–0.80 on the " +
            "calibration seeds; with 5,000 steps, seeds 3, 4, 5 gave 0.539, 0.617, 0.605 " +
            "and seeds 0, 1, 2 0.754, 0.754, 0.789): a single seed can pass, the median does " +
            "not reach 0.7."
          : ""),
      ...acc.get(ha.id)!.record(at(L)),
    }));
  }
  const L2 = 2 * Ltr;
  for (const g of gssms) {
    checks.push(gate.check({
      id: `J4-${g.id}-2x`,
      title: `${g.label} fails beyond the training length: at 2× it copies few strings`,
      source: `${SOURCE}: GSSMs' performance "drops to zero almost immediately"`,
      metric: `median string accuracy at L = ${L2}, ${c.evalCount} strings`,
      measured: round6(medianAt(g.id, L2)),
      margin: medianSeedMargin(acc.get(g.id)!.values(at(L2)), c.evalCount),
      threshold: c.gssmAt2x,
      direction: "<=",
      expected: "pass",
      evidence: "trained",
      calibration: calibrationOf(pilot, `J4-${g.id}-2x`),
      detail: `Seeds ${seeds.join(", ")}; ${g.paramCount.toLocaleString("en-US")} parameters ` +
        `against Hard-ALiBi's ${ha.paramCount.toLocaleString("en-US")}. Threshold as CLAIMS.md ` +
        "J4 proposes. The state is far from Cor 2.8's capacity limit at this length (J3), so " +
        "this tests learned behaviour, not the theorem.",
      ...acc.get(g.id)!.record(at(L2)),
    }));
  }
  if (gssms.length) {
    const best = gssms.reduce((b, g) => (medianAt(g.id, L2) > medianAt(b.id, L2) ? g : b));
    const haAt = acc.get(ha.id)!.values(at(L2));
    const bestAt = acc.get(best.id)!.values(at(L2));
    checks.push(gate.check({
      id: "J4-gap",
      title: "Hard-ALiBi copies far more strings than the best GSSM at 2× the training length",
      source: `${SOURCE}: transformers "dramatically outperform" GSSMs beyond the training length`,
      metric: `Hard-ALiBi minus best GSSM (${best.label}), median string accuracy at L = ${L2}`,
      measured: round6(medianAt(ha.id, L2) - medianAt(best.id, L2)),
      margin: medianGapMargin(haAt, bestAt, c.evalCount),
      threshold: c.gapAt2x,
      direction: ">=",
      expected: "pass",
      evidence: "trained",
      calibration: calibrationOf(pilot, "J4-gap"),
      detail: `At L = ${L2}: ${
        [ha, ...gssms].map((a) => `${a.label} ${medianAt(a.id, L2).toFixed(3)}`).join(", ")
      }. Threshold as CLAIMS.md J4 proposes.`,
      seeds: [...seeds],
      perSeed: haAt.map((v, i) => round6(v - bestAt[i])),
    }));
  }
  if (others.length) {
    const L4 = 4 * Ltr;
    checks.push(gate.check({
      id: "J4-HA-best",
      title: "Hard-ALiBi generalises better than every other transformer at 4×, by a margin",
      source: `${SOURCE}: Hard-ALiBi best of the transformer arms`,
      metric: `Hard-ALiBi minus best other arm, median string accuracy at L = ${L4}`,
      measured: round6(medianAt(ha.id, L4) - Math.max(...others.map((a) => medianAt(a.id, L4)))),
      // "Best" needs a strict margin: 0.1 is about two 95% Wilson half-widths of a proportion
      // near ½ over 256 strings, so a smaller gap could be sampling noise.
      threshold: 0.1,
      direction: ">",
      expected: "pass",
      evidence: "trained",
      calibration: calibrationOf(pilot, "J4-HA-best"),
      detail: `At L = ${L4}: ${
        [ha, ...others].map((a) => `${a.label} ${medianAt(a.id, L4).toFixed(3)}`).join(", ")
      }. ` +
        `Secondary, reported not checked (CLAIMS.md J4): RoPE worst, and NoPE ≥ RoPE at ` +
        `2× (L = ${2 * Ltr}: ${
          others.map((a) =>
            `${a.label} ${medianAt(a.id, 2 * Ltr).toFixed(3)}`
          ).join(", ")
        }).`,
    }));
  }

  const curve: FigureData["data"] = [];
  for (const arm of arms) {
    for (const L of c.evalLengths) {
      const { median, lo, hi } = acc.get(arm.id)!.spread(at(L));
      curve.push({ arm: arm.label, length: L, accuracy: median, lo, hi });
    }
  }
  const figures: FigureData[] = [{
    id: "accuracy-vs-length",
    title: "String accuracy vs string length",
    caption:
      `Trained on lengths 1–${Ltr} (rule); median over seeds ${seeds.join(", ")}, band min–max; ` +
      `${c.evalCount} strings per point, teacher-forced exact match of the answer and its EOS.`,
    mark: "line",
    data: curve,
    x: {
      field: "length",
      title: "string length L (log scale)",
      type: "quantitative",
      scale: "log",
    },
    y: { field: "accuracy", title: "string accuracy", type: "quantitative" },
    color: { field: "arm", title: "arm", type: "nominal" },
    band: { lower: "lo", upper: "hi" },
    rules: [{ axis: "x", value: Ltr, label: `training max ${Ltr}` }],
  }];
  return {
    config: {
      ...c,
      seedsUsed: seeds,
      calibration: pilot ?? null,
      arms: arms.map((a) => ({ id: a.id, config: a.config, params: a.paramCount })),
    } as unknown as Record<string, unknown>,
    checks,
    metrics: {
      accuracy: Object.fromEntries(
        arms.map((a) => [a.id, acc.get(a.id)!.results.map((s) => s.map(round6))]),
      ),
      evalLengths: c.evalLengths,
    },
    figures,
    phases: phases.seconds,
  };
}

/** The `copy-length-generalisation` suite. */
export const copyLengthGeneralisation: Suite = {
  id: ID,
  title: "Length generalisation of copying transformers",
  // The paper says "transformers"; here only Hard-ALiBi generalises (NoPE, ALiBi and RoPE copy
  // nothing beyond the training length), so the claim says what is checked.
  claim: "A Hard-ALiBi transformer trained to copy short strings copies much longer ones, " +
    "better than NoPE, ALiBi and RoPE transformers (the paper: transformers in general), and " +
    "state-space models (Mamba, LSTM) of its size fail beyond the training length.",
  source: SOURCE,
  pilots: PILOTS,
  run,
};

/**
 * Claim ("Repeat After Me", Jelassi et al. 2024, §3.3; seed 002; CLAIMS.md §1.4 J4):
 * transformers trained to copy short strings copy much longer ones; Hard-ALiBi generalises best
 * ("almost perfect length generalization") and RoPE worst.
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
  medianSeedMargin,
  Phases,
  type SeedResults,
  trainingSeeds,
  validityGate,
} from "./harness.ts";
import { round6, type Suite, type SuiteContext, type SuiteProfile } from "./suite.ts";

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
}

const EVALUATION = {
  evalLengths: [10, 20, 30, 40, 60, 80],
  evalCount: 256,
  gate: 0.9,
  haAt2x: 0.9,
  haAt4x: 0.7,
};

/** The profiles: quick trains the primary arm with one seed and evaluates fewer lengths. */
export const CONFIGS: Record<SuiteProfile, CopyConfig> = {
  full: { ...COPY_TRAINING.full, ...EVALUATION },
  quick: { ...COPY_TRAINING.quick, ...EVALUATION, evalLengths: [10, 20, 40, 80] },
  // Tests only: the training length, 2× and 4× it, 8 strings each.
  smoke: { ...COPY_TRAINING.smoke, ...EVALUATION, evalLengths: [8, 16, 32], evalCount: 8 },
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
  const [ha, ...others] = arms;
  const inDistribution = arms.map((a) => {
    const b = armBudget(c, a.id);
    return `${a.label} ${medianAt(a.id, Ltr).toFixed(3)} (${b.steps} steps, lr ${b.lr})`;
  }).join(", ");
  // The gate holds when every trained arm copies strings of the training length; it is judged on
  // the weakest arm, so a model that did not learn the task cannot fail a generalisation check.
  const weakest = arms.reduce((w, a) => (medianAt(a.id, Ltr) < medianAt(w.id, Ltr) ? a : w));
  const notLearned = arms.filter((a) => medianAt(a.id, Ltr) < c.gate);
  const gate = validityGate(
    {
      id: "J4-gate",
      title: `Validity gate: every arm copies strings of the training length ${Ltr}`,
      source: `${SOURCE}: "all models solve the task in distribution"`,
      metric: `lowest median string accuracy at L = ${Ltr} over the arms (${weakest.label})`,
      measured: round6(medianAt(weakest.id, Ltr)),
      margin: medianSeedMargin(acc.get(weakest.id)!.values(at(Ltr)), c.evalCount),
      threshold: c.gate,
      direction: ">=",
      expected: "pass",
      evidence: "trained",
      detail: `In distribution: ${inDistribution}. If the gate fails, the length checks below ` +
        "are inconclusive, not failed.",
      ...acc.get(weakest.id)!.record(at(Ltr)),
    },
    notLearned.length
      ? `${
        notLearned.map((a) => `${a.label} (${armBudget(c, a.id).steps} steps)`).join(", ")
      } did not learn to copy strings of the training length`
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
      detail: `Seeds ${seeds.join(", ")}. Thresholds as CLAIMS.md J4 proposes (≥ 0.9 at 2×, ` +
        `≥ 0.7 at 4×), kept after the pilot: 5,000 steps at lr 3e-3 (raised from 3,000 at 1e-3, ` +
        `which reached 0.73 at 2× and 0 at 4×) gave 0.93 and 0.73.` + (mult === 4
          ? " The 4× accuracy sits on a plateau near 0.7, not above it: 7,000 steps gave 0.715 " +
            "(seed 0), a change of rounding alone moved the three seeds from 0.754, 0.754, " +
            "0.793 to 0.512, 0.469, 0.715, and seeds 3, 4, 5 gave 0.539, 0.617, 0.605 (median " +
            "0.605): this check's verdict depends on the seeds and the rounding " +
            '(README, "Deviations and known limits").'
          : ""),
      ...acc.get(ha.id)!.record(at(L)),
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
      detail: `At L = ${L4}: ${
        arms.map((a) => `${a.label} ${medianAt(a.id, L4).toFixed(3)}`).join(", ")
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
    "better than NoPE, ALiBi and RoPE transformers (the paper: transformers in general).",
  source: SOURCE,
  run,
};

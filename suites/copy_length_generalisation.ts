/**
 * Claim ("Repeat After Me", Jelassi et al. 2024, §3.3; seed 002; CLAIMS.md §1.4 J4):
 * transformers trained to copy short strings copy much longer ones; Hard-ALiBi generalises best
 * ("almost perfect length generalization") and RoPE worst.
 *
 * Each arm is one entry of {@linkcode ARMS}: a sequence model (parameters + logits). The
 * transformer arms are parameter-matched (no position parameters); state-space arms join as
 * entries when the SelectiveScan op lands.
 * @module
 */
import { copyEvalBatch, copyTrainBatch, copyVocab } from "../fixtures/copy_task.ts";
import { Prng } from "../fixtures/prng.ts";
import { dataSeed, deriveSeed, initSeed } from "../fixtures/seeds.ts";
import {
  hardAlibiWindows,
  type TransformerConfig,
  transformerLogits,
  transformerParamCount,
  transformerParams,
  transformerParamShapes,
} from "../models/transformer.ts";
import type { Value } from "../onnx/graph.ts";
import { crossEntropy } from "../onnx/nn.ts";
import { argMax } from "../onnx/ops.ts";
import {
  ADAMW_DEFAULTS,
  type AdamWConfig,
  type ParamShape,
  type ParamSpec,
} from "../onnx/optim.ts";
import { forwardSession } from "../onnx/inference.ts";
import { tensor } from "../onnx/runtime.ts";
import type { CheckResult, FigureData } from "../reports/schema.ts";
import { check, median, type Profile, round6, type Suite, type SuiteContext } from "./suite.ts";
import { trainCached } from "./training.ts";

const ID = "copy-length-generalisation";
const SOURCE = "Jelassi et al. 2024 (arXiv 2402.01032) §3.3, seed 002; CLAIMS.md §1.4 J4";

/** A model arm: everything the suite needs to train and evaluate it. */
export interface CopyArm {
  id: string;
  label: string;
  /** Identifies the architecture in cache keys. */
  config: unknown;
  paramCount: number;
  params(prng: Prng): ParamSpec[];
  /** Parameter names and shapes (no initial values drawn). */
  paramShapes: ParamShape[];
  /** Logits [B, T, V] for token ids [B, T]. */
  logits(p: Record<string, Value>, ids: Value): Value;
}

/** The alphabet of the paper's code: 26 letters (vocabulary 30 with BOS, COPY, EOS, PAD). */
export const ALPHABET = 26;

function transformerArm(id: string, label: string, cfg: TransformerConfig): CopyArm {
  return {
    id,
    label,
    config: cfg,
    paramCount: transformerParamCount(cfg),
    params: (prng) => transformerParams(cfg, prng),
    paramShapes: transformerParamShapes(cfg),
    logits: (p, ids) => transformerLogits(cfg, p, ids),
  };
}

// CLAIMS.md §1.4 T-HA: 2 layers, d 64, 8 heads × 8 dims, MLP 256; Hard-ALiBi windows 1..4 on
// half the heads (the paper's code default), NoPE on the rest.
const BASE: Omit<TransformerConfig, "position"> = {
  vocab: copyVocab(ALPHABET).size,
  dModel: 64,
  heads: 8,
  layers: 2,
  mlp: 256,
  tiedHead: true,
};

/** The arms, in the order figures list them. */
export const ARMS: readonly CopyArm[] = [
  transformerArm("hard-alibi", "T Hard-ALiBi", {
    ...BASE,
    position: "hard-alibi",
    hardAlibiWindows: hardAlibiWindows(8, 4),
  }),
  // NoPE has no position signal but the causal mask: it must first derive positions, then form a
  // previous-token head, then the induction (copy) head. With 2 layers it did not learn to copy at
  // all (loss 2.5 after 3,000 steps; 0.28 at L = 10 after the full 5,000); with 4 layers it does
  // (pilot, seed 0, lr 1e-3: 1.0 at L = 10 and 20). CLAIMS.md §1.4 allows 4 layers; width 48
  // (8 heads × 6, MLP 192) keeps its 114,624 parameters within 15% of the others' 102,016.
  transformerArm("nope", "T NoPE (4 layers)", {
    ...BASE,
    position: "nope",
    layers: 4,
    dModel: 48,
    mlp: 192,
  }),
  transformerArm("alibi", "T ALiBi", { ...BASE, position: "alibi" }),
  // GPT-NeoX rotates 25% of each head's dims; of our 8-dim heads that leaves 2 dims, a single
  // frequency, with which the pilot did not learn to copy at all. We rotate every dim.
  transformerArm("rope", "T RoPE", { ...BASE, position: "rope", ropeFraction: 1 }),
];

/** Steps and peak learning rate of one arm's training. */
export interface TrainBudget {
  steps: number;
  lr: number;
}

/** A profile's configuration. */
export interface CopyConfig {
  /** Arm ids trained in this profile (the first is the primary arm, Hard-ALiBi). */
  arms: string[];
  trainMaxLen: number;
  context: number;
  batch: number;
  /** Training steps of an arm without an entry in `armBudgets`. */
  steps: number;
  /** Peak learning rate of an arm without an entry in `armBudgets`. */
  lr: number;
  /** Arms whose pilot set a budget of their own (the reason is beside the profile). */
  armBudgets: Readonly<Record<string, TrainBudget>>;
  warmupSteps: number;
  minLrRatio: number;
  optimizer: AdamWConfig;
  seeds: number;
  evalLengths: number[];
  evalCount: number;
  /** Validity gate: an arm must reach this string accuracy at the training length. */
  gate: number;
  /** Hard-ALiBi at 2× the training length. */
  haAt2x: number;
  /** Hard-ALiBi at 4× the training length. */
  haAt4x: number;
}

const OPTIMIZER: AdamWConfig = { ...ADAMW_DEFAULTS, weightDecay: 0.1, clipNorm: 1.0 };

/** The profiles. */
// Budgets, from pilots with seed 0 (string accuracy at L = 20, and at 4× = 80 for Hard-ALiBi):
// - Hard-ALiBi: 3,000 steps at lr 1e-3 reached 0.95 (0 at 4×); 5,000 at 3e-3 reached 1.0 (0.73 at
//   4×), and 0.754 median over the three seeds in the full run. More budget did not add margin at
//   4×: 4,000 steps gave 0.656, 7,000 gave 0.715. Nor did a 128-token context (0.688), CLAIMS.md's
//   L ≤ 16 (0.605 at 4× = 64) or a 64-token context (0.254).
// - RoPE at 3e-3 reached only 0.83–0.88 in 5,000 steps (loss still 0.014); at 1e-3 it reached 1.0
//   in 3,000. CLAIMS.md §1.4 allows a learning rate per family from {3e-4, 1e-3, 3e-3}.
// - NoPE (4 layers) and ALiBi reach 1.0 in 3,000 steps at 3e-3; beyond L = 20 they copied nothing
//   after 5,000 steps either (0 at L = 30 on every seed). 3,000 steps keep the full profile within
//   its 45 minutes on 2 cores.
const FULL: CopyConfig = {
  arms: ["hard-alibi", "nope", "alibi", "rope"],
  trainMaxLen: 20,
  context: 96,
  batch: 32,
  steps: 5000,
  lr: 3e-3,
  warmupSteps: 100,
  minLrRatio: 0.1,
  armBudgets: {
    nope: { steps: 3000, lr: 3e-3 },
    alibi: { steps: 3000, lr: 3e-3 },
    rope: { steps: 3000, lr: 1e-3 },
  },
  optimizer: OPTIMIZER,
  seeds: 3,
  evalLengths: [10, 20, 30, 40, 60, 80],
  evalCount: 256,
  gate: 0.9,
  haAt2x: 0.9,
  haAt4x: 0.7,
};

/** The profiles: quick trains the primary arm with one seed and evaluates fewer lengths. */
export const CONFIGS: Record<Profile, CopyConfig> = {
  full: FULL,
  // CI's budget (10 minutes for three suites) trains the primary arm only.
  quick: { ...FULL, arms: ["hard-alibi"], seeds: 1, evalLengths: [10, 20, 40, 80] },
};

/** The budget an arm trains with in a profile. */
export function armBudget(c: CopyConfig, armId: string): TrainBudget {
  return c.armBudgets[armId] ?? { steps: c.steps, lr: c.lr };
}

/** The training-relevant part of a config (the probe suite reuses trained arms by this key). */
function trainKey(c: CopyConfig, budget: TrainBudget) {
  return {
    trainMaxLen: c.trainMaxLen,
    context: c.context,
    batch: c.batch,
    lr: budget.lr,
    warmupSteps: c.warmupSteps,
    minLrRatio: c.minLrRatio,
    optimizer: c.optimizer,
  };
}

/** Trains (or loads) one arm on copying strings of length 1..trainMaxLen. */
export async function trainCopyArm(
  ctx: SuiteContext,
  c: CopyConfig,
  arm: CopyArm,
  seed: number,
): Promise<{ params: Map<string, Float32Array>; seconds: number; losses: number[] }> {
  const budget = armBudget(c, arm.id);
  const params = arm.params(new Prng(initSeed(ID, arm.id, seed)));
  const trainSeed = dataSeed(ID, "train", seed);
  const shape = [c.batch, c.context];
  const trained = await trainCached(ctx, {
    label: `copy ${arm.id} seed ${seed}`,
    key: { suite: ID, arm: arm.config, train: trainKey(c, budget), seed },
    spec: {
      name: `copy-${arm.id}`,
      params,
      batch: [
        { name: "input", dtype: "int32", shape },
        { name: "target", dtype: "int32", shape },
        { name: "mask", dtype: "float32", shape },
      ],
      // Loss on the answer (second copy and EOS) only, as the paper's code masks it.
      loss: (p, b) => crossEntropy(arm.logits(p, b.input), b.target, b.mask),
      optimizer: c.optimizer,
    },
    steps: budget.steps,
    schedule: {
      lr: budget.lr,
      warmupSteps: c.warmupSteps,
      totalSteps: budget.steps,
      minLrRatio: c.minLrRatio,
    },
    batch: (step) => {
      const b = copyTrainBatch(new Prng(deriveSeed("batch", trainSeed, step)), {
        batch: c.batch,
        context: c.context,
        minLen: 1,
        maxLen: c.trainMaxLen,
        D: ALPHABET,
      });
      return {
        input: tensor("int32", b.input, shape),
        target: tensor("int32", b.target, shape),
        mask: tensor("float32", b.lossMask, shape),
      };
    },
  });
  const out = new Map<string, Float32Array>();
  for (const [k, v] of trained.state.tensors) if (k.startsWith("p.")) out.set(k.slice(2), v);
  return { params: out, seconds: trained.seconds, losses: trained.state.losses.map((l) => l.loss) };
}

/**
 * String accuracy of teacher-forced argmax predictions: a row counts when every position with
 * mask 1 is predicted right (equal to greedy copying, CLAIMS.md §0).
 */
export async function stringAccuracy(
  arm: CopyArm,
  values: Map<string, Float32Array>,
  batch: { input: Int32Array; target: Int32Array; lossMask: Float32Array },
  rows: number,
  context: number,
  threads: number,
): Promise<{ accuracy: number; correct: boolean[] }> {
  const chunk = Math.min(rows, 128);
  const session = await forwardSession({
    name: `copy-eval-${arm.id}`,
    params: arm.paramShapes,
    inputs: [{ name: "input", dtype: "int32", shape: [chunk, context] }],
    outputs: (p, x) => ({ pred: argMax(arm.logits(p, x.input), { axis: -1 }) }),
    threads,
  });
  const correct: boolean[] = [];
  for (let start = 0; start < rows; start += chunk) {
    const n = Math.min(chunk, rows - start);
    const input = new Int32Array(chunk * context);
    input.set(batch.input.subarray(start * context, (start + n) * context));
    const out = await session.run(values, { input: tensor("int32", input, [chunk, context]) });
    const pred = out.pred.data as BigInt64Array;
    for (let r = 0; r < n; r++) {
      let ok = true;
      for (let t = 0; t < context && ok; t++) {
        const i = (start + r) * context + t;
        if (batch.lossMask[i] === 1 && Number(pred[r * context + t]) !== batch.target[i]) {
          ok = false;
        }
      }
      correct.push(ok);
    }
  }
  return { accuracy: correct.filter((x) => x).length / rows, correct };
}

/** Accuracy per evaluation length of one trained arm. */
async function evaluateLengths(
  c: CopyConfig,
  arm: CopyArm,
  values: Map<string, Float32Array>,
  threads: number,
): Promise<number[]> {
  const out: number[] = [];
  for (const L of c.evalLengths) {
    const context = 2 * L + 2;
    const batch = copyEvalBatch(new Prng(dataSeed(ID, "test", L)), {
      count: c.evalCount,
      length: L,
      context,
      D: ALPHABET,
    });
    out.push((await stringAccuracy(arm, values, batch, c.evalCount, context, threads)).accuracy);
  }
  return out;
}

async function run(ctx: SuiteContext) {
  const c = CONFIGS[ctx.profile];
  const arms = c.arms.map((id) => ARMS.find((a) => a.id === id)!);
  const seeds = Array.from({ length: c.seeds }, (_, i) => ctx.seed + i);
  const phases: Record<string, number> = {};
  const acc = new Map<string, number[][]>(); // arm → seed → length
  for (const arm of arms) {
    const perSeed: number[][] = [];
    for (const seed of seeds) {
      const trained = await trainCopyArm(ctx, c, arm, seed);
      phases[`train ${arm.id} seed ${seed}`] = round6(trained.seconds);
      const t0 = performance.now();
      perSeed.push(await evaluateLengths(c, arm, trained.params, ctx.threads));
      phases[`eval ${arm.id} seed ${seed}`] = round6((performance.now() - t0) / 1000);
    }
    acc.set(arm.id, perSeed);
  }
  const medianAt = (armId: string, L: number) => {
    const k = c.evalLengths.indexOf(L);
    return median(acc.get(armId)!.map((s) => s[k]));
  };
  const perSeedAt = (armId: string, L: number) => {
    const k = c.evalLengths.indexOf(L);
    return acc.get(armId)!.map((s) => round6(s[k]));
  };
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
  const gateFailed = notLearned.length
    ? `${
      notLearned.map((a) => `${a.label} (${armBudget(c, a.id).steps} steps)`).join(", ")
    } did not learn to copy strings of the training length`
    : undefined;
  const checks: CheckResult[] = [];
  checks.push(check({
    id: "J4-gate",
    title: `Validity gate: every arm copies strings of the training length ${Ltr}`,
    source: `${SOURCE}: "all models solve the task in distribution"`,
    metric: `lowest median string accuracy at L = ${Ltr} over the arms (${weakest.label})`,
    measured: round6(medianAt(weakest.id, Ltr)),
    threshold: c.gate,
    direction: ">=",
    expected: "pass",
    detail: `In distribution: ${inDistribution}. If the gate fails, the length checks below ` +
      "are inconclusive, not failed.",
    seeds,
    perSeed: perSeedAt(weakest.id, Ltr),
  }));
  for (const [mult, threshold] of [[2, c.haAt2x], [4, c.haAt4x]] as const) {
    const L = mult * Ltr;
    checks.push(check({
      id: `J4-HA-${mult}x`,
      title: `Hard-ALiBi copies strings ${mult}× longer than it was trained on`,
      source: `${SOURCE}: Hard-ALiBi "almost perfect length generalization"`,
      metric: `median string accuracy at L = ${L}, ${c.evalCount} strings`,
      measured: round6(medianAt(ha.id, L)),
      threshold,
      direction: ">=",
      expected: "pass",
      detail: `Seeds ${seeds.join(", ")}. Thresholds as CLAIMS.md J4 proposes (≥ 0.9 at 2×, ` +
        `≥ 0.7 at 4×), kept after the pilot: 5,000 steps at lr 3e-3 (raised from 3,000 at 1e-3, ` +
        `which reached 0.73 at 2× and 0 at 4×) gave 0.93 and 0.73.` + (mult === 4
          ? " The 4× accuracy sits on a plateau near 0.7, not above it: 7,000 steps gave 0.715 " +
            "(seed 0), a change of rounding alone moved the three seeds from 0.754, 0.754, " +
            "0.793 to 0.512, 0.469, 0.715, and seeds 3, 4, 5 gave 0.539, 0.617, 0.605 (median " +
            "0.605): this check's verdict depends on the seeds and the rounding " +
            '(README, "Deviations and known limits").'
          : ""),
      seeds,
      perSeed: perSeedAt(ha.id, L),
      inconclusive: gateFailed,
    }));
  }
  if (others.length) {
    const L4 = 4 * Ltr;
    checks.push(check({
      id: "J4-HA-best",
      title: "Hard-ALiBi generalises at least as well as every other transformer at 4×",
      source: `${SOURCE}: Hard-ALiBi best of the transformer arms`,
      metric: `Hard-ALiBi minus best other arm, median string accuracy at L = ${L4}`,
      measured: round6(medianAt(ha.id, L4) - Math.max(...others.map((a) => medianAt(a.id, L4)))),
      threshold: 0,
      direction: ">=",
      expected: "pass",
      detail: `At L = ${L4}: ${
        arms.map((a) => `${a.label} ${medianAt(a.id, L4).toFixed(3)}`).join(", ")
      }. ` +
        `Secondary, reported not checked (CLAIMS.md J4): RoPE worst, and NoPE ≥ RoPE at ` +
        `2× (L = ${2 * Ltr}: ${
          others.map((a) =>
            `${a.label} ${medianAt(a.id, 2 * Ltr).toFixed(3)}`
          ).join(", ")
        }).`,
      inconclusive: gateFailed,
    }));
  }

  const curve: FigureData["data"] = [];
  for (const arm of arms) {
    c.evalLengths.forEach((L, k) => {
      const vals = acc.get(arm.id)!.map((s) => s[k]);
      curve.push({
        arm: arm.label,
        length: L,
        accuracy: round6(median(vals)),
        lo: round6(Math.min(...vals)),
        hi: round6(Math.max(...vals)),
      });
    });
  }
  const figures: FigureData[] = [{
    id: "accuracy-vs-length",
    title: "String accuracy vs string length",
    caption:
      `Trained on lengths 1–${Ltr} (rule); median over seeds ${seeds.join(", ")}, band min–max; ` +
      `${c.evalCount} strings per point, teacher-forced exact match.`,
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
        arms.map((a) => [a.id, acc.get(a.id)!.map((s) => s.map(round6))]),
      ),
      evalLengths: c.evalLengths,
    },
    figures,
    phases,
  };
}

/** The `copy-length-generalisation` suite. */
export const copyLengthGeneralisation: Suite = {
  id: ID,
  title: "Length generalisation of copying transformers",
  claim:
    "Transformers trained to copy short strings copy much longer ones; Hard-ALiBi best, RoPE worst.",
  source: SOURCE,
  run,
};

/**
 * Claim (Mamba, Gu & Dao 2023, §4.1 and Table 1; docs/claims.md §2.1 M1): a selective (S6) scan
 * solves selective copying, a time-invariant one does not. In the "no gate" architecture the
 * paper reports 97.0% accuracy for S6 and 18.3% for S4; the full Mamba block 99.8%.
 *
 * Scaled as docs/claims.md M1 proposes: L = 64 noise cells, M = 8 tokens, vocabulary 10 (input
 * 80; the quick profile halves L and M); 2 layers of d_model 32, state N = 16; the S6 arm
 * projects Δ, B and C from its input, the LTI arm learns B, C and Δ as constants (the same
 * `SelectiveScan` op, B and C broadcast); the full profile adds the Mamba block (d_inner 64).
 * @module
 */
import { Prng } from "../fixtures/prng.ts";
import { dataSeed, deriveSeed, initSeed } from "../fixtures/seeds.ts";
import {
  type S4CopyingBatch,
  s4CopyingBatch,
  type S4CopyingOptions,
} from "../fixtures/s4_copying.ts";
import {
  type MambaConfig,
  mambaLogits,
  mambaParamCount,
  mambaParams,
  mambaParamShapes,
  mambaStateBits,
  type SsmLayer,
} from "../models/mamba.ts";
import { crossEntropy } from "../onnx/nn.ts";
import { argMax } from "../onnx/ops.ts";
import { ADAMW_DEFAULTS, type AdamWConfig } from "../onnx/optim.ts";
import { tensor } from "../onnx/runtime.ts";
import type { CheckResult, FigureData } from "../reports/schema.ts";
import { trainCached } from "../runner/training.ts";
import {
  acrossSeeds,
  chunkedEvaluator,
  type EvalContext,
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

const ID = "selective-copying-ssm";
const SOURCE = "Mamba (Gu & Dao, arXiv 2312.00752) §4.1, Table 1; docs/claims.md §2.1 M1";

/** A trained arm: its layer and what the paper reports for it. */
export interface SsmArm {
  id: string;
  label: string;
  layer: SsmLayer;
  /** The paper's Table 1 accuracy (%) of the matching model. */
  paper: number;
  paperLabel: string;
}

/** A profile's configuration. */
export interface SelectiveCopyingSsmConfig {
  task: S4CopyingOptions;
  dModel: number;
  layers: number;
  dState: number;
  arms: SsmArm[];
  batch: number;
  steps: number;
  lr: number;
  warmupSteps: number;
  minLrRatio: number;
  optimizer: AdamWConfig;
  seeds: number;
  validation: number;
  evalEvery: number;
  /** Median token accuracy the selective arms must reach ("solves"). */
  solveThreshold: number;
  /** Median token accuracy the LTI arm must stay at or below ("does not solve"). */
  failThreshold: number;
  /** Median S6 − median LTI accuracy at least. */
  gapThreshold: number;
}

const S6: SsmArm = {
  id: "s6",
  label: "S6 (selective), no gate",
  layer: "s6",
  paper: 97.0,
  paperLabel: "no gate, S6",
};
const LTI: SsmArm = {
  id: "lti",
  label: "LTI (time-invariant), no gate",
  layer: "lti",
  paper: 18.3,
  paperLabel: "no gate, S4",
};
const MAMBA: SsmArm = {
  id: "mamba",
  label: "Mamba block (S6, gated)",
  layer: "mamba",
  paper: 99.8,
  paperLabel: "Mamba",
};

// Adam as the paper (no weight decay), gradient clipping at 1 as every suite here.
const OPTIMIZER: AdamWConfig = { ...ADAMW_DEFAULTS, weightDecay: 0, clipNorm: 1.0 };

const THRESHOLDS = { solveThreshold: 0.9, failThreshold: 0.5, gapThreshold: 0.4 };

/**
 * The profiles: `full` is docs/claims.md M1's scaled task (L 64, M 8, vocabulary 10) with the
 * Mamba block as a third arm; `quick` a smaller task. Constant lr 3e-3 after warm-up (M1 proposes
 * 1e-3; docs/claims.md allows a rate from {3e-4, 1e-3, 3e-3}): at 1e-3 the S6 arm learned too
 * slowly for either budget in the exploration on calibration seed 1000.
 */
export const CONFIGS: Record<SuiteProfile, SelectiveCopyingSsmConfig> = {
  full: {
    task: { noise: 64, memorize: 8, vocab: 10 },
    dModel: 32,
    layers: 2,
    dState: 16,
    arms: [S6, LTI, MAMBA],
    batch: 32,
    // Fixed before the pilot ran, from 300 steps of each arm on the native engine (S6 ≈ 70, LTI
    // ≈ 70, Mamba ≈ 47 steps/s): 3 seeds × 3 arms in ≈ 25 minutes on 2 cores, under the issue's
    // 30 (the pilot and the verdict run then took 19–20 minutes). The first pilot trained 3,000
    // steps on the portable engine (≈ 45 minutes) and found S6 at 0.761, the gap at 0.374.
    steps: 10000,
    lr: 3e-3,
    warmupSteps: 100,
    minLrRatio: 1,
    optimizer: OPTIMIZER,
    seeds: 3,
    validation: 1000,
    evalEvery: 250,
    ...THRESHOLDS,
  },
  // Half the noise and half the tokens (input 40): what 3 seeds × 2 arms can learn in 5
  // minutes on 2 cores. Explored on calibration seed 1000 (native engine): at docs/claims.md's
  // L 64, M 8 the S6 arm reached 0.70 token accuracy after 5,000 steps at lr 1e-3.
  quick: {
    task: { noise: 32, memorize: 4, vocab: 10 },
    dModel: 32,
    layers: 2,
    dState: 16,
    arms: [S6, LTI],
    batch: 32,
    steps: 1000,
    lr: 3e-3,
    warmupSteps: 100,
    minLrRatio: 1,
    optimizer: OPTIMIZER,
    seeds: 3,
    validation: 1000,
    evalEvery: 250,
    ...THRESHOLDS,
  },
  // Tests only: a tiny task and model, a few steps.
  smoke: {
    task: { noise: 6, memorize: 2, vocab: 5 },
    dModel: 8,
    layers: 1,
    dState: 4,
    arms: [S6, LTI, MAMBA],
    batch: 4,
    steps: 3,
    lr: 1e-3,
    warmupSteps: 1,
    minLrRatio: 1,
    optimizer: OPTIMIZER,
    seeds: 1,
    validation: 8,
    evalEvery: 3,
    ...THRESHOLDS,
  },
};

/**
 * The pilots on calibration seeds, frozen: re-run with `deno task reproduce --profile quick
 * --suite selective-copying-ssm --seed 1000` (and `--profile full`).
 */
export const PILOTS: Partial<Record<Profile, Pilot>> = {
  quick: {
    seeds: [1000, 1001, 1002],
    engine: "native",
    decided: "Task (L 32, M 4), budget (1,000 steps of 32 at a constant lr 3e-3, 230 s for 3 " +
      "seeds × 2 arms) and docs/claims.md M1's thresholds (solves ≥ 0.90, does not solve ≤ " +
      "0.50, gap ≥ 0.40) kept: every check passes on the calibration seeds, by its bound." +
      NATIVE_NOTE + "S6 0.9385, LTI 0.317, gap 0.6215.",
    checks: {
      "M1-gate": { measured: 0.3185, perSeed: [0.26725, 0.369, 0.3185], actual: "pass" },
      "M1-s6": { measured: 0.95, perSeed: [0.94025, 0.96675, 0.95], actual: "pass" },
      "M1-lti": { measured: 0.3185, perSeed: [0.26725, 0.369, 0.3185], actual: "pass" },
      "M1-gap": { measured: 0.6315, perSeed: [0.673, 0.59775, 0.6315], actual: "pass" },
    },
  },
  full: {
    seeds: [1000, 1001, 1002],
    engine: "native",
    decided: "docs/claims.md M1's task (L 64, M 8) at 10,000 steps of 32 and lr 3e-3 on the " +
      "native engine, the budget fixed beforehand as what 3 seeds × 3 arms train in under 30 " +
      "minutes on 2 cores by a 300-step timing (≈ 25 estimated, 19 measured), and M1's " +
      "thresholds kept: every check passes on the calibration " +
      "seeds, by its bound, the S6 arm and the gap narrowly (S6 0.908, lower bound 0.903 against " +
      "0.9; gap 0.448 against 0.4; LTI 0.460 against ≤ 0.5), so each is pre-registered to pass " +
      "and may well not on other seeds. The Mamba block solves the task on every seed (0.9995). " +
      "The first pilot (3,000 steps, portable engine, ≈ 45 minutes) had S6 0.761, LTI 0.387, " +
      "Mamba 0.491 (0.393, 0.996, 0.491) and the gap 0.374: S6, Mamba and the gap failed.",
    checks: {
      "M1-gate": { measured: 0.46025, perSeed: [0.51275, 0.46025, 0.412875], actual: "pass" },
      "M1-s6": { measured: 0.908375, perSeed: [0.886875, 0.941375, 0.908375], actual: "pass" },
      "M1-lti": { measured: 0.46025, perSeed: [0.51275, 0.46025, 0.412875], actual: "pass" },
      "M1-mamba": { measured: 0.9995, perSeed: [0.992, 0.9995, 1], actual: "pass" },
      "M1-gap": { measured: 0.448125, perSeed: [0.374125, 0.481125, 0.4955], actual: "pass" },
    },
  },
};

function modelConfig(c: SelectiveCopyingSsmConfig, arm: SsmArm): MambaConfig {
  return {
    vocab: c.task.vocab,
    dModel: c.dModel,
    layers: c.layers,
    layer: arm.layer,
    dState: c.dState,
  };
}

interface ArmSeedResult {
  seed: number;
  accuracy: number;
  curve: { step: number; accuracy: number }[];
  cached: boolean;
  seconds: number;
}

type Evaluator = (values: Map<string, Float32Array>) => Promise<number>;

/** Token accuracy at the marker positions of the fixed validation rows. */
async function makeEvaluator(
  ctx: EvalContext,
  c: SelectiveCopyingSsmConfig,
  model: MambaConfig,
  valid: S4CopyingBatch,
): Promise<Evaluator> {
  const L = valid.length;
  const chunk = Math.min(c.validation, 250);
  const evaluator = await chunkedEvaluator(ctx, {
    name: `${ID}-eval`,
    params: mambaParamShapes(model),
    inputs: [{ name: "input", dtype: "int32", width: L }],
    chunk,
    outputs: (p, x) => ({ pred: argMax(mambaLogits(model, p, x.input), { axis: -1 }) }),
  });
  const M = c.task.memorize;
  return async (values) => {
    let right = 0;
    await evaluator.run(values, c.validation, { input: valid.input }, (out, start, n) => {
      const pred = out.pred.data as BigInt64Array; // [chunk, L]
      for (let b = 0; b < n; b++) {
        for (let j = 0; j < M; j++) {
          const t = b * L + L - M + j;
          if (Number(pred[t]) === valid.target[start * L + t]) right++;
        }
      }
    });
    return right / (c.validation * M);
  };
}

async function trainArm(
  ctx: SuiteContext,
  c: SelectiveCopyingSsmConfig,
  arm: SsmArm,
  seed: number,
  evaluate: Evaluator,
): Promise<ArmSeedResult> {
  const model = modelConfig(c, arm);
  const L = c.task.noise + 2 * c.task.memorize;
  const trainSeed = dataSeed(ID, "train", seed);
  const trained = await trainCached(ctx, {
    label: `${ID} ${arm.id} seed ${seed}`,
    key: {
      suite: ID,
      model,
      task: c.task,
      batch: c.batch,
      lr: c.lr,
      warmup: c.warmupSteps,
      minLrRatio: c.minLrRatio,
      optimizer: c.optimizer,
      seed,
      validation: c.validation,
      evalEvery: c.evalEvery,
    },
    spec: {
      name: `${ID}-${arm.id}`,
      params: mambaParams(model, new Prng(initSeed(ID, arm.id, seed))),
      batch: [
        { name: "input", dtype: "int32", shape: [c.batch, L] },
        { name: "target", dtype: "int32", shape: [c.batch, L] },
        { name: "mask", dtype: "float32", shape: [c.batch, L] },
      ],
      // The answer tokens only, as S4's copying loss.
      loss: (p, b) => crossEntropy(mambaLogits(model, p, b.input), b.target, b.mask),
      optimizer: c.optimizer,
    },
    steps: c.steps,
    schedule: {
      lr: c.lr,
      warmupSteps: c.warmupSteps,
      totalSteps: c.steps,
      minLrRatio: c.minLrRatio,
    },
    batch: (step) => {
      const b = s4CopyingBatch(new Prng(deriveSeed("batch", trainSeed, step)), c.batch, c.task);
      return {
        input: tensor("int32", b.input, [c.batch, L]),
        target: tensor("int32", b.target, [c.batch, L]),
        mask: tensor("float32", b.mask, [c.batch, L]),
      };
    },
    evalEvery: c.evalEvery,
    evaluate: async (_step, values) => ({ accuracy: await evaluate(values) }),
  });
  return {
    seed,
    accuracy: trained.state.evals.at(-1)!.metrics.accuracy,
    curve: trained.state.evals.map((e) => ({ step: e.step, accuracy: e.metrics.accuracy })),
    cached: trained.cached,
    seconds: trained.seconds,
  };
}

async function run(ctx: SuiteContext) {
  const c = CONFIGS[ctx.profile];
  const pilot = pilotOf(PILOTS, ctx);
  const phases = new Phases();
  const seeds = trainingSeeds(ctx, c.seeds);
  const valid = s4CopyingBatch(new Prng(dataSeed(ID, "valid", 0)), c.validation, c.task);
  const results = new Map<string, SeedResults<ArmSeedResult>>();
  for (const arm of c.arms) {
    const evaluate = await makeEvaluator(ctx, c, modelConfig(c, arm), valid);
    results.set(
      arm.id,
      await acrossSeeds(seeds, phases, arm.id, (seed) => trainArm(ctx, c, arm, seed, evaluate)),
    );
  }
  const accuracy = (r: ArmSeedResult) => r.accuracy;
  const trials = c.validation * c.task.memorize;
  const chance = 1 / (c.task.vocab - 2);

  // The gate: a "does not solve" verdict means something only if the arm learned anything; the
  // weakest arm must beat a uniform guess among the vocab − 2 data tokens, by its bound.
  const weakest = c.arms.reduce((w, a) =>
    results.get(a.id)!.median(accuracy) < results.get(w.id)!.median(accuracy) ? a : w
  );
  const gate = validityGate({
    id: "M1-gate",
    title: "Validity gate: every arm learned more than a uniform guess of the tokens",
    source: `${SOURCE}; the LTI arm's verdict means nothing if training failed`,
    metric: `lowest median token accuracy over the arms (${weakest.label})`,
    measured: round6(results.get(weakest.id)!.median(accuracy)),
    margin: medianSeedMargin(results.get(weakest.id)!.values(accuracy), trials),
    threshold: round6(chance),
    direction: ">",
    expected: "pass",
    evidence: "trained",
    calibration: calibrationOf(pilot, "M1-gate"),
    detail: `Chance = 1/${c.task.vocab - 2} (the data tokens 1..${c.task.vocab - 2}). If the ` +
      "gate fails, the M1 checks are inconclusive, not failed.",
    ...results.get(weakest.id)!.record(accuracy),
  });
  const checks: CheckResult[] = [gate.result];
  const budget = `${c.steps} steps of batch ${c.batch} (${c.steps * c.batch} examples; the ` +
    "paper: 400k steps of batch 64 at L 4096)";
  for (const arm of c.arms) {
    const rs = results.get(arm.id)!;
    const solves = arm.layer !== "lti";
    checks.push(gate.check({
      id: `M1-${arm.id}`,
      title: `${arm.label} ${solves ? "solves" : "does not solve"} selective copying`,
      source: `${SOURCE}: ${arm.paperLabel} ${arm.paper}%`,
      metric: `median token accuracy over ${seeds.length} seeds, ${c.validation} validation ` +
        `rows × ${c.task.memorize} tokens`,
      measured: rs.spread(accuracy).median,
      margin: medianSeedMargin(rs.values(accuracy), trials),
      threshold: solves ? c.solveThreshold : c.failThreshold,
      direction: solves ? ">=" : "<=",
      expected: "pass",
      evidence: "trained",
      calibration: calibrationOf(pilot, `M1-${arm.id}`),
      detail: `${mambaParamCount(modelConfig(c, arm)).toLocaleString("en")} parameters, ` +
        `state ${mambaStateBits(modelConfig(c, arm)).toLocaleString("en")} bits; ${budget}. ` +
        THRESHOLD_REASON,
      ...rs.record(accuracy),
    }));
  }
  const s6 = results.get(S6.id)!;
  const lti = results.get(LTI.id)!;
  const gap = s6.median(accuracy) - lti.median(accuracy);
  checks.push(gate.check({
    id: "M1-gap",
    title: "Selectivity is what solves it: S6 beats LTI by a wide margin",
    source: `${SOURCE}: 97.0 vs 18.3`,
    metric: "median S6 accuracy − median LTI accuracy",
    measured: round6(gap),
    margin: medianGapMargin(s6.values(accuracy), lti.values(accuracy), trials),
    threshold: c.gapThreshold,
    direction: ">=",
    expected: "pass",
    evidence: "trained",
    calibration: calibrationOf(pilot, "M1-gap"),
    detail: `S6 per seed ${s6.values(accuracy).map(round6).join(", ")}; LTI per seed ` +
      `${lti.values(accuracy).map(round6).join(", ")}. ${THRESHOLD_REASON}`,
    seeds: [...seeds],
    perSeed: s6.values(accuracy).map((v, i) => round6(v - lti.values(accuracy)[i])),
  }));

  const arms = c.arms.map((arm) => {
    const model = modelConfig(c, arm);
    const s = results.get(arm.id)!.spread(accuracy);
    return {
      arm: arm.id,
      label: arm.label,
      params: mambaParamCount(model),
      stateBits: mambaStateBits(model),
      accuracyMedian: s.median,
      accuracyMin: s.lo,
      accuracyMax: s.hi,
      paper: arm.paper / 100,
    };
  });
  return {
    config: { ...c, seedsUsed: seeds, calibration: pilot ?? null } as unknown as Record<
      string,
      unknown
    >,
    checks,
    metrics: {
      arms,
      perSeed: Object.fromEntries(
        [...results].map(([id, rs]) => [
          id,
          rs.results.map((r) => ({ seed: r.seed, accuracy: round6(r.accuracy) })),
        ]),
      ),
    },
    figures: buildFigures(c, results, seeds),
    phases: phases.seconds,
  };
}

const THRESHOLD_REASON = "Thresholds as docs/claims.md M1 proposes: solves ≥ 0.90, does not " +
  "solve ≤ 0.50, gap ≥ 0.40 (the paper: 97.0, 18.3 and 99.8%).";

function buildFigures(
  c: SelectiveCopyingSsmConfig,
  results: Map<string, SeedResults<ArmSeedResult>>,
  seeds: number[],
): FigureData[] {
  const bars: FigureData["data"] = [];
  for (const arm of c.arms) {
    bars.push({
      arm: arm.label,
      source: "ours (median of seeds)",
      accuracy: results.get(arm.id)!.spread((r) => r.accuracy).median,
    });
    bars.push({ arm: arm.label, source: "paper, Table 1", accuracy: arm.paper / 100 });
  }
  const curve: FigureData["data"] = [];
  for (const arm of c.arms) {
    const rs = results.get(arm.id)!;
    rs.results[0].curve.forEach((pt, k) => {
      const { median, lo, hi } = rs.spread((r) => r.curve[k].accuracy);
      curve.push({ arm: arm.label, step: pt.step, accuracy: median, lo, hi });
    });
  }
  return [
    {
      id: "accuracy-vs-paper",
      title: "Selective copying: token accuracy, ours beside Mamba's Table 1",
      caption: `Ours: median over seeds ${seeds.join(", ")} of the token accuracy on ` +
        `${c.validation} fixed rows (L ${c.task.noise}, M ${c.task.memorize}, vocabulary ` +
        `${c.task.vocab}); the paper's: L 4096, 16 tokens, 400k steps.`,
      mark: "bar",
      data: bars,
      x: { field: "arm", title: "arm", type: "nominal" },
      y: { field: "accuracy", title: "token accuracy", type: "quantitative" },
      color: { field: "source", title: "source", type: "nominal" },
      column: { field: "source", title: "", type: "nominal" },
      rules: [
        { axis: "y", value: c.solveThreshold, label: `solves ≥ ${c.solveThreshold}` },
        { axis: "y", value: c.failThreshold, label: `does not solve ≤ ${c.failThreshold}` },
      ],
    },
    {
      id: "accuracy-curve",
      title: "Token accuracy vs training step",
      caption: "Median over seeds (band: min–max) on the fixed validation rows.",
      mark: "line",
      data: curve,
      x: { field: "step", title: "training step", type: "quantitative" },
      y: { field: "accuracy", title: "token accuracy", type: "quantitative" },
      color: { field: "arm", title: "arm", type: "nominal" },
      band: { lower: "lo", upper: "hi" },
    },
  ];
}

/** The `selective-copying-ssm` suite. */
export const selectiveCopyingSsm: Suite = {
  id: ID,
  title: "Selective copying with selective and time-invariant state-space layers",
  claim: "A selective (S6) scan solves selective copying; a time-invariant (LTI) scan of the " +
    "same size does not.",
  source: SOURCE,
  pilots: PILOTS,
  run,
};

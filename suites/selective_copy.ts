/**
 * Claim (seed 000, nn-experiments "Efficiently solving the Selective Copying Problem with a Very
 * Small Language Model"; CLAIMS.md §2.2): dilation schedules give a 6-layer CNN the reach of a
 * deeper one. A 6-layer kernel-9 stack sees 24 cells each way and fails; 12 layers (48 cells)
 * succeed; 6 layers with dilations [1,2,3,4,5,1] succeed with half the parameters; uniform
 * dilation 2 reaches 48 cells but only even offsets and fails.
 *
 * S1, S2 check the seed's own arithmetic and table; S3 trains the arms from fixed seeds. The full
 * profile also trains the `selective-copying-ssm` suite's selective (S6) scan on the same task
 * and draws it beside the CNNs, so the two answers to selective copying sit side by side; the seed
 * makes no claim about it, so no check reads it.
 * @module
 */
import { Prng, type RandomSource } from "../fixtures/prng.ts";
import { dataSeed, deriveSeed, initSeed } from "../fixtures/seeds.ts";
import {
  type SelectiveCopyBatch,
  selectiveCopyBatch,
  type SelectiveCopyOptions,
  selectiveCopyValidationSet,
} from "../fixtures/selective_copy.ts";
import {
  type DilatedCnnConfig,
  dilatedCnnLogits,
  dilatedCnnParamCount,
  dilatedCnnParams,
  dilatedCnnParamShapes,
  receptiveField,
} from "../models/dilated_cnn.ts";
import {
  type MambaConfig,
  mambaLogits,
  mambaParamCount,
  mambaParams,
  mambaParamShapes,
  mambaStateBits,
  type SsmLayer,
} from "../models/mamba.ts";
import type { Value } from "../onnx/graph.ts";
import { crossEntropy } from "../onnx/nn.ts";
import { argMax } from "../onnx/ops.ts";
import {
  ADAMW_DEFAULTS,
  type AdamWConfig,
  type ParamShape,
  type ParamSpec,
} from "../onnx/optim.ts";
import { tensor } from "../onnx/runtime.ts";
import type { CheckResult, FigureData } from "../reports/schema.ts";
import { trainCached } from "../runner/training.ts";
import {
  acrossSeeds,
  chunkedEvaluator,
  type EvalContext,
  medianSeedMargin,
  Phases,
  type SeedResults,
  trainingSeeds,
  validityGate,
} from "./harness.ts";
import {
  calibrationOf,
  check,
  NATIVE_NOTE,
  type Pilot,
  pilotOf,
  type Profile,
  round6,
  type Suite,
  type SuiteContext,
  type SuiteProfile,
} from "./suite.ts";

const ID = "selective-copy";
const SOURCE = "seed 000 (nn-experiments blog, 2024-12-14) tables; CLAIMS.md §2.2";

/** One row of the seed's tables (nitem 10, area 40, channels 64). */
export interface SeedRow {
  layers: number;
  kernel: number;
  dilations: number[];
  valLoss: number;
  params: number;
}

const row = (
  layers: number,
  kernel: number,
  d: number | number[],
  valLoss: number,
  params: number,
) => ({
  layers,
  kernel,
  dilations: typeof d === "number" ? new Array(layers).fill(d) : d,
  valLoss,
  params,
});

/** Every row of the seed's three tables, as printed. */
export const SEED_TABLE: readonly SeedRow[] = [
  row(6, 9, 1, 0.203547, 237_952),
  row(8, 9, 1, 0.088512, 311_808),
  row(10, 9, 1, 0.0164525, 385_664),
  row(12, 9, 1, 0.00128227, 459_520),
  row(6, 11, 1, 0.12667, 287_104),
  row(6, 13, 1, 0.0355833, 336_256),
  row(6, 15, 1, 0.00105004, 385_408),
  row(6, 17, 1, 0.000182635, 434_560),
  row(6, 9, 2, 0.324, 237_952),
  row(6, 9, [2, 2, 2, 1, 1, 1], 0.0670086, 237_952),
  row(6, 9, [2, 2, 2, 2, 1, 1], 0.0676225, 237_952),
  row(6, 9, [2, 2, 2, 2, 2, 1], 0.0870354, 237_952),
  row(6, 9, [3, 3, 3, 1, 1, 1], 0.0514503, 237_952),
  row(6, 9, [4, 4, 4, 1, 1, 1], 0.0460037, 237_952),
  row(6, 9, [5, 5, 5, 1, 1, 1], 0.042369, 237_952),
  row(6, 9, [6, 6, 6, 1, 1, 1], 0.0363355, 237_952),
  row(6, 9, [2, 4, 6, 3, 5, 1], 0.0323526, 237_952),
  row(6, 9, [2, 6, 4, 5, 3, 1], 0.0212173, 237_952),
  row(6, 9, [3, 5, 7, 9, 11, 1], 0.0096797, 237_952),
  row(6, 9, [5, 4, 3, 2, 1, 1], 0.0066358, 237_952),
  row(6, 9, [2, 3, 4, 5, 1, 1], 0.0021815, 237_952),
  row(6, 9, [2, 3, 4, 5, 6, 1], 0.0015734, 237_952),
  row(6, 9, [1, 2, 3, 4, 5, 1], 0.0002703, 237_952),
];

/**
 * Fraction of answer bytes whose information lies beyond radius R (CLAIMS.md §2.2, derived):
 * answer byte j at p = A + 2 + j must see cells x_j..A−1 with x_j ≥ j, so
 * f(R) = clip((A + 2 − R)/(A − N + 1), 0, 1); R* = A + 2.
 */
export function unreachableFraction(radius: number, task: SelectiveCopyOptions): number {
  const f = (task.area + 2 - radius) / (task.area - task.items + 1);
  return Math.min(1, Math.max(0, f));
}

/** A trained arm: a name, its dilation schedule and what the claim expects of it. */
export interface Arm {
  id: string;
  label: string;
  dilations: number[];
  /** "solves": mask error ≤ the solve threshold; "fails": ≥ the fail threshold. */
  expect: "solves" | "fails";
}

/**
 * A state-space arm trained on the same task with the same recipe and drawn beside the CNNs; no
 * check reads it (the seed's claim is about CNNs).
 */
export interface SsmArm {
  id: string;
  label: string;
  layer: SsmLayer;
}

/** A profile's configuration of S3. */
export interface SelectiveCopyConfig {
  task: SelectiveCopyOptions;
  channels: number;
  kernel: number;
  arms: Arm[];
  /** Drawn beside the CNNs, not judged. */
  ssmArms: SsmArm[];
  /** The SSM arms' shape: `selective-copying-ssm`'s models (d_model, layers, state N). */
  ssm: { dModel: number; layers: number; dState: number };
  batch: number;
  steps: number;
  lr: number;
  warmupSteps: number;
  minLrRatio: number;
  optimizer: AdamWConfig;
  seeds: number;
  validation: number;
  evalEvery: number;
  /** Median mask error at or below which an arm "solves" the task. */
  solveThreshold: number;
  /** Median mask error at or above which an arm "fails" the task. */
  failThreshold: number;
}

const OPTIMIZER: AdamWConfig = { ...ADAMW_DEFAULTS, weightDecay: 0.01, clipNorm: 1.0 };

/** `selective-copying-ssm`'s models: 2 layers, d_model 32, state N 16. */
const SSM_SHAPE = { dModel: 32, layers: 2, dState: 16 };

/** The profiles. `full` is the seed's own task and width; `quick` the scaled task of CLAIMS S3. */
export const CONFIGS: Record<SuiteProfile, SelectiveCopyConfig> = {
  full: {
    task: { area: 40, items: 10 },
    channels: 64,
    kernel: 9,
    arms: [
      {
        id: "6L-d1",
        label: "6 layers, dilation 1 (R 24)",
        dilations: [1, 1, 1, 1, 1, 1],
        expect: "fails",
      },
      {
        id: "12L-d1",
        label: "12 layers, dilation 1 (R 48)",
        dilations: new Array(12).fill(1),
        expect: "solves",
      },
      {
        id: "6L-d123451",
        label: "6 layers, dilations [1,2,3,4,5,1] (R 64)",
        dilations: [1, 2, 3, 4, 5, 1],
        expect: "solves",
      },
      {
        id: "6L-d2",
        label: "6 layers, dilation 2 (R 48, even offsets only)",
        dilations: [2, 2, 2, 2, 2, 2],
        expect: "fails",
      },
    ],
    // selective-copying-ssm's S6 arm (2 layers, d_model 32, N 16), ungated: 3 seeds add ≈ 1.6
    // minutes on the native engine (≈ 12 on the portable, its Scan body).
    ssmArms: [{ id: "s6", label: "S6 scan, 2 layers, d 32 (selective)", layer: "s6" }],
    ssm: SSM_SHAPE,
    batch: 64,
    steps: 1800,
    lr: 2e-3,
    warmupSteps: 100,
    minLrRatio: 0.05,
    optimizer: OPTIMIZER,
    seeds: 3,
    validation: 2000,
    evalEvery: 250,
    // The claim's bound (CLAIMS.md S3), in both profiles: the full budget sits at it (the
    // 12-layer arm 2.93% on calibration seeds, inside its bounds), and that is reported, not
    // hidden under a looser bound.
    solveThreshold: 0.03,
    failThreshold: 0.2,
  },
  quick: {
    task: { area: 24, items: 6 },
    channels: 32,
    kernel: 9,
    arms: [
      {
        id: "4L-d1",
        label: "4 layers, dilation 1 (R 16)",
        dilations: [1, 1, 1, 1],
        expect: "fails",
      },
      {
        id: "7L-d1",
        label: "7 layers, dilation 1 (R 28)",
        dilations: new Array(7).fill(1),
        expect: "solves",
      },
      {
        id: "4L-d1231",
        label: "4 layers, dilations [1,2,3,1] (R 28)",
        dilations: [1, 2, 3, 1],
        expect: "solves",
      },
      {
        id: "4L-d2",
        label: "4 layers, dilation 2 (R 32, even offsets only)",
        dilations: [2, 2, 2, 2],
        expect: "fails",
      },
    ],
    // None: the CNN arms use the 5 minutes; the full profile draws the S6 arm.
    ssmArms: [],
    ssm: SSM_SHAPE,
    batch: 64,
    steps: 2500,
    lr: 2e-3,
    warmupSteps: 100,
    minLrRatio: 0.05,
    optimizer: OPTIMIZER,
    seeds: 3, // its checks report a median
    validation: 1000,
    evalEvery: 125,
    solveThreshold: 0.03,
    failThreshold: 0.2,
  },
  // Tests only: 8 channels, kernel 5, 4 steps on a task with R* = 8, the quick profile's four
  // kinds of arm.
  smoke: {
    task: { area: 6, items: 2 },
    channels: 8,
    kernel: 5,
    arms: [
      {
        id: "2L-d1",
        label: "2 layers, dilation 1 (R 4)",
        dilations: [1, 1],
        expect: "fails",
      },
      {
        id: "4L-d1",
        label: "4 layers, dilation 1 (R 8)",
        dilations: [1, 1, 1, 1],
        expect: "solves",
      },
      {
        id: "2L-d13",
        label: "2 layers, dilations [1,3] (R 8)",
        dilations: [1, 3],
        expect: "solves",
      },
      {
        id: "2L-d2",
        label: "2 layers, dilation 2 (R 8, even offsets only)",
        dilations: [2, 2],
        expect: "fails",
      },
    ],
    ssmArms: [{ id: "s6", label: "S6 scan, 1 layer, d 8", layer: "s6" }],
    ssm: { dModel: 8, layers: 1, dState: 4 },
    batch: 8,
    steps: 4,
    lr: 2e-3,
    warmupSteps: 1,
    minLrRatio: 0.05,
    optimizer: OPTIMIZER,
    seeds: 1,
    validation: 16,
    evalEvery: 2,
    solveThreshold: 0.03,
    failThreshold: 0.2,
  },
};

/**
 * The pilots on calibration seeds, frozen: re-run with `deno task reproduce --profile quick
 * --suite selective-copy --seed 1000` (and `--profile full`).
 */
export const PILOTS: Partial<Record<Profile, Pilot>> = {
  quick: {
    seeds: [1000, 1001, 1002],
    engine: "native",
    decided: "Budget (2,500 steps at lr 2e-3, 32 channels) and thresholds (solve ≤ 3%, fail ≥ " +
      "20%) kept: every check passes on the calibration seeds, the gate included." + NATIVE_NOTE +
      "gate 0.5307, 4L-d1 0.3363, 7L-d1 0.00133, 4L-d1231 0.0105, 4L-d2 0.5307.",
    checks: {
      "S3-gate": { measured: 0.528667, perSeed: [0.528667, 0.5315, 0.528333], actual: "pass" },
      "S3-4L-d1": { measured: 0.337833, perSeed: [0.337833, 0.338333, 0.3365], actual: "pass" },
      "S3-7L-d1": { measured: 0.001, perSeed: [0.001, 0.000333333, 0.0015], actual: "pass" },
      "S3-4L-d1231": {
        measured: 0.0101667,
        perSeed: [0.00633333, 0.0158333, 0.0101667],
        actual: "pass",
      },
      "S3-4L-d2": { measured: 0.528667, perSeed: [0.528667, 0.5315, 0.528333], actual: "pass" },
    },
  },
  full: {
    seeds: [1000, 1001, 1002],
    engine: "native",
    decided: "Budget (1,800 steps × 64 at lr 2e-3, the seed's 64 channels) and thresholds (solve " +
      "≤ 3%, the claim's bound; fail ≥ 20%) kept. On the calibration seeds the dilated arm " +
      "solves (1.83%), the failing arms fail and the gate holds, but the 12-layer arm's median, " +
      "2.98%, sits inside its 95% bounds (2.78–3.18%): S3-12L-d1 is pre-registered " +
      "inconclusive, the claim partially reproduced at this budget. Piloted again on the native " +
      "engine (986 s for 3 seeds × 4 arms and the S6 arm, against ≈ 32 minutes portable, over " +
      "the issue's 30) before any native run on the verdict seeds: the same verdicts, with the " +
      "figures below; the portable engine's pilot had 12L-d1 2.93% (2.74–3.13%), " +
      "6L-d123451 1.86%, 6L-d1 0.543, gate 0.668.",
    checks: {
      "S3-gate": { measured: 0.66025, perSeed: [0.67895, 0.65705, 0.66025], actual: "pass" },
      "S3-6L-d1": { measured: 0.55315, perSeed: [0.55315, 0.50285, 0.60715], actual: "pass" },
      "S3-12L-d1": {
        measured: 0.02975,
        perSeed: [0.0173, 0.04015, 0.02975],
        actual: "inconclusive",
      },
      "S3-6L-d123451": { measured: 0.01825, perSeed: [0.01825, 0.0226, 0.01175], actual: "pass" },
      "S3-6L-d2": { measured: 0.66025, perSeed: [0.67895, 0.65705, 0.66025], actual: "pass" },
    },
  },
};

/**
 * The mask error of an arm that sees none of the area: answer byte j (teacher-forced, so letters
 * 0..j−1 are known) is a uniform guess among the N − j letters left, wrong with probability
 * 1 − 1/(N − j); averaged over j that is 1 − H_N/N.
 *
 * @example
 * ```ts
 * import { assertAlmostEquals } from "@std/assert";
 * import { eliminationError } from "./selective_copy.ts";
 *
 * assertAlmostEquals(eliminationError(2), 0.25); // j = 0: ½ wrong; j = 1: never
 * ```
 */
export function eliminationError(items: number): number {
  let harmonic = 0;
  for (let m = 1; m <= items; m++) harmonic += 1 / m;
  return 1 - harmonic / items;
}

function modelConfig(c: SelectiveCopyConfig, arm: Arm): DilatedCnnConfig {
  return { vocab: 256, channels: c.channels, kernel: c.kernel, dilations: arm.dilations };
}

function ssmConfig(c: SelectiveCopyConfig, arm: SsmArm): MambaConfig {
  return { vocab: 256, ...c.ssm, layer: arm.layer };
}

/** What training and evaluation need of an arm's model, CNN or SSM. */
interface ArmModel {
  /** Names the architecture in cache keys. */
  config: DilatedCnnConfig | MambaConfig;
  params(prng: RandomSource): ParamSpec[];
  paramShapes: ParamShape[];
  /** Logits [B, L, 256] for bytes [B, L]. */
  logits(p: Record<string, Value>, ids: Value): Value;
}

function cnnModel(c: SelectiveCopyConfig, arm: Arm): ArmModel {
  const m = modelConfig(c, arm);
  return {
    config: m,
    params: (prng) => dilatedCnnParams(m, prng),
    paramShapes: dilatedCnnParamShapes(m),
    logits: (p, ids) => dilatedCnnLogits(m, p, ids),
  };
}

function ssmModel(c: SelectiveCopyConfig, arm: SsmArm): ArmModel {
  const m = ssmConfig(c, arm);
  return {
    config: m,
    params: (prng) => mambaParams(m, prng),
    paramShapes: mambaParamShapes(m),
    logits: (p, ids) => mambaLogits(m, p, ids),
  };
}

/** S1: parameter counts and receptive-field radii of every seed row. */
export function checkArithmetic(
  table: readonly SeedRow[] = SEED_TABLE,
): { check: CheckResult; rows: Record<string, unknown>[] } {
  const task = { area: 40, items: 10 };
  let mismatches = 0;
  const rows = table.map((r) => {
    const cfg = { vocab: 256, channels: 64, kernel: r.kernel, dilations: r.dilations };
    const params = dilatedCnnParamCount(cfg);
    const rf = receptiveField(cfg);
    if (params !== r.params) mismatches++;
    return {
      layers: r.layers,
      kernel: r.kernel,
      dilations: r.dilations.join(","),
      seedParams: r.params,
      params,
      radius: rf.radius,
      contiguous: rf.contiguous,
      unreachable: round6(unreachableFraction(rf.radius, task)),
      seedValLoss: r.valLoss,
    };
  });
  // The blog's own statements: 6 layers k 9 "see about 24 cells", 12 layers "about 48".
  const r6 = receptiveField({ kernel: 9, dilations: new Array(6).fill(1) }).radius;
  const r12 = receptiveField({ kernel: 9, dilations: new Array(12).fill(1) }).radius;
  if (r6 !== 24) mismatches++;
  if (r12 !== 48) mismatches++;
  return {
    rows,
    check: check({
      id: "S1",
      title: "Parameter counts and receptive fields equal the seed's numbers",
      source: `${SOURCE}: every table row; text "6 * floor(9 / 2)" = 24 and "about 48 cells"`,
      metric: "rows whose params differ from the table, plus radius statements that differ",
      measured: mismatches,
      threshold: 0,
      direction: "==",
      expected: "pass",
      evidence: "arithmetic",
      detail: `Params = L·(C²k + C) + 256·C (head tied); R = ⌊k/2⌋·Σd. ${table.length} rows ` +
        `checked; radius of 6 layers k 9 = ${r6}, of 12 layers = ${r12}.`,
    }),
  };
}

/** S2: among dilation-1 rows, R ≥ 42 ⇔ loss ≤ 0.0013 and R ≤ 40 ⇔ loss ≥ 0.0164. */
export function checkTableConsistency(table: readonly SeedRow[] = SEED_TABLE): CheckResult {
  const task = { area: 40, items: 10 };
  const required = task.area + 2;
  let violations = 0;
  const notes: string[] = [];
  for (const r of table.filter((r) => r.dilations.every((d) => d === 1))) {
    const R = receptiveField(r).radius;
    const ok = R >= required ? r.valLoss <= 0.0013 : r.valLoss >= 0.0164;
    if (!ok) violations++;
    notes.push(`${r.layers}L k${r.kernel}: R ${R}, loss ${r.valLoss}`);
  }
  const gridding = SEED_TABLE.find((r) => r.dilations.join() === "2,2,2,2,2,1")!;
  const rc = receptiveField(gridding).contiguous;
  return check({
    id: "S2",
    title: "Among dilation-1 rows, reaching R* = 42 separates low from high loss",
    source: `${SOURCE}: dilation-1 rows; R* = area + 2 (CLAIMS.md §2.2, derived)`,
    metric: "dilation-1 rows violating R ≥ 42 ⇔ loss ≤ 0.0013 (and R ≤ 40 ⇔ loss ≥ 0.0164)",
    measured: violations,
    threshold: 0,
    direction: "==",
    expected: "pass",
    evidence: "arithmetic",
    detail: `${notes.join("; ")}. Coverage is necessary, not sufficient, for dilated stacks: ` +
      `[2,2,2,2,2,1] covers R_c = ${rc} yet has loss ${gridding.valLoss}, so no R threshold ` +
      `is applied to dilated rows.`,
  });
}

interface ArmSeedResult {
  seed: number;
  maskError: number;
  valLoss: number;
  /** Mask error by answer position j = 0..N−1. */
  byPosition: number[];
  curve: { examples: number; maskError: number }[];
  cached: boolean;
  seconds: number;
}

/** The evaluation of an arm's trained parameters on the fixed validation strings. */
type Evaluator = (values: Map<string, Float32Array>) => Promise<{
  maskError: number;
  valLoss: number;
  byPosition: number[];
}>;

/** The fixed validation strings (the same for every arm and seed). */
function validationSet(c: SelectiveCopyConfig): SelectiveCopyBatch {
  return selectiveCopyValidationSet(dataSeed(ID, "valid", 0), c.validation, c.task);
}

/**
 * Mask error (answer bytes wrong), validation loss (cross-entropy over all positions, the seed's
 * "validation loss") and mask error by answer position, in chunks of the largest divisor of the
 * validation count up to 500 rows.
 */
async function makeEvaluator(
  ctx: EvalContext,
  c: SelectiveCopyConfig,
  model: ArmModel,
  valid: SelectiveCopyBatch,
): Promise<Evaluator> {
  const L = valid.length;
  const chunk = largestDivisor(c.validation, 500);
  const evaluator = await chunkedEvaluator(ctx, {
    name: "selective-copy-eval",
    params: model.paramShapes,
    inputs: [
      { name: "input", dtype: "int32", width: L },
      { name: "target", dtype: "int32", width: L },
    ],
    chunk,
    outputs: (p, x) => {
      const logits = model.logits(p, x.input);
      return { loss: crossEntropy(logits, x.target), pred: argMax(logits, { axis: -1 }) };
    },
  });
  const N = c.task.items;
  return async (values) => {
    let lossSum = 0;
    const wrong = new Array(N).fill(0);
    const data = { input: valid.input, target: valid.target };
    await evaluator.run(values, c.validation, data, (out, start, n) => {
      lossSum += Number(out.loss.data[0]);
      const pred = out.pred.data as BigInt64Array; // [chunk, L]
      for (let b = 0; b < n; b++) {
        for (let j = 0; j < N; j++) {
          const t = (b * L) + L - N + j; // answer byte j of row b
          if (Number(pred[t]) !== valid.target[start * L + t]) wrong[j]++;
        }
      }
    });
    const total = wrong.reduce((a, b) => a + b, 0);
    return {
      maskError: total / (c.validation * N),
      valLoss: lossSum / (c.validation / chunk),
      byPosition: wrong.map((w) => w / c.validation),
    };
  };
}

/** The largest divisor of n not above `max`: an evaluation batch without padding. */
function largestDivisor(n: number, max: number): number {
  for (let k = Math.min(max, n); k >= 1; k--) if (n % k === 0) return k;
  return 1;
}

/**
 * Trains (or loads) one arm from one seed, evaluating every `evalEvery` steps; training batches
 * skip the validation texts.
 */
async function trainArm(
  ctx: SuiteContext,
  c: SelectiveCopyConfig,
  armId: string,
  model: ArmModel,
  seed: number,
  valid: SelectiveCopyBatch,
  evaluate: Evaluator,
): Promise<ArmSeedResult> {
  const params = model.params(new Prng(initSeed(ID, armId, seed)));
  const L = valid.length;
  const validTexts = new Set(valid.texts);
  const trainSeed = dataSeed(ID, "train", seed);
  const trained = await trainCached(ctx, {
    label: `${ID} ${armId} seed ${seed}`,
    key: {
      suite: ID,
      model: model.config,
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
      name: `${ID}-${armId}`,
      params,
      batch: [
        { name: "input", dtype: "int32", shape: [c.batch, L] },
        { name: "target", dtype: "int32", shape: [c.batch, L] },
      ],
      // The seed's loss: cross-entropy over all positions, not just the answer.
      loss: (p, b) => crossEntropy(model.logits(p, b.input), b.target),
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
      const b = selectiveCopyBatch(
        new Prng(deriveSeed("batch", trainSeed, step)),
        c.batch,
        c.task,
        validTexts,
      );
      return {
        input: tensor("int32", b.input, [c.batch, L]),
        target: tensor("int32", b.target, [c.batch, L]),
      };
    },
    evalEvery: c.evalEvery,
    evaluate: async (_step, values) => {
      const r = await evaluate(values);
      return {
        maskError: r.maskError,
        valLoss: r.valLoss,
        ...Object.fromEntries(r.byPosition.map((e, j) => [`pos${j}`, e])),
      };
    },
  });
  const last = trained.state.evals.at(-1)!.metrics;
  return {
    seed,
    maskError: last.maskError,
    valLoss: last.valLoss,
    byPosition: Array.from({ length: c.task.items }, (_, j) => last[`pos${j}`]),
    curve: trained.state.evals.map((e) => ({
      examples: e.step * c.batch,
      maskError: e.metrics.maskError,
    })),
    cached: trained.cached,
    seconds: trained.seconds,
  };
}

async function run(ctx: SuiteContext) {
  const c = CONFIGS[ctx.profile];
  const pilot = pilotOf(PILOTS, ctx);
  const phases = new Phases();
  const s1 = checkArithmetic();
  const s2 = checkTableConsistency();
  const seeds = trainingSeeds(ctx, c.seeds);
  const valid = validationSet(c);
  const results = new Map<string, SeedResults<ArmSeedResult>>();
  const trainAll = async (id: string, model: ArmModel) => {
    const evaluate = await makeEvaluator(ctx, c, model, valid);
    const train = (seed: number) => trainArm(ctx, c, id, model, seed, valid, evaluate);
    results.set(id, await acrossSeeds(seeds, phases, id, train));
  };
  for (const arm of c.arms) await trainAll(arm.id, cnnModel(c, arm));
  for (const arm of c.ssmArms) await trainAll(arm.id, ssmModel(c, arm));

  const maskError = (r: ArmSeedResult) => r.maskError;
  const positions = c.validation * c.task.items; // every validation string's answer items
  // The gate: a "fails" verdict means something only if the arm learned the task as far as it
  // reaches. An arm that learned nothing of where the letters lie, but knows the N letters and
  // eliminates those already answered (teacher forcing shows them), errs on 1 − H_N/N of the
  // answer bytes; every arm must do better, by its 95% bound.
  const blind = eliminationError(c.task.items);
  const worst = c.arms.reduce((w, a) =>
    results.get(a.id)!.median(maskError) > results.get(w.id)!.median(maskError) ? a : w
  );
  const gate = validityGate({
    id: "S3-gate",
    title: "Validity gate: every arm learned where the letters lie, as far as it reaches",
    source: `${SOURCE}; the failing arms' verdicts mean nothing if they learned nothing`,
    metric: `highest median mask error over the arms (${worst.label})`,
    measured: round6(results.get(worst.id)!.median(maskError)),
    margin: medianSeedMargin(results.get(worst.id)!.values(maskError), positions),
    threshold: round6(blind),
    direction: "<",
    expected: "pass",
    evidence: "trained",
    calibration: calibrationOf(pilot, "S3-gate"),
    detail: `Threshold 1 − H_N/N for N = ${c.task.items} letters: the error of an arm that ` +
      "sees none of the area and guesses among the letters not yet answered. If the gate " +
      "fails, the S3 checks are inconclusive, not failed.",
    ...results.get(worst.id)!.record(maskError),
  });
  const checks: CheckResult[] = [s1.check, s2, gate.result];
  const armRows: Record<string, unknown>[] = [];
  for (const arm of c.arms) {
    const rs = results.get(arm.id)!;
    const err = rs.spread(maskError);
    const model = modelConfig(c, arm);
    const rf = receptiveField(model);
    const solves = arm.expect === "solves";
    armRows.push({
      arm: arm.id,
      label: arm.label,
      dilations: arm.dilations.join(","),
      params: dilatedCnnParamCount(model),
      radius: rf.radius,
      contiguous: rf.contiguous,
      unreachable: round6(unreachableFraction(rf.radius, c.task)),
      maskErrorMedian: err.median,
      maskErrorMin: err.lo,
      maskErrorMax: err.hi,
      valLossMedian: rs.spread((r) => r.valLoss).median,
    });
    checks.push(gate.check({
      id: `S3-${arm.id}`,
      title: `${arm.label} ${solves ? "solves" : "fails"} selective copying`,
      source: `${SOURCE}: ${solves ? "low" : "high"} validation loss of this configuration`,
      metric: `median mask error over ${seeds.length} seeds, ${c.validation} validation strings`,
      measured: err.median,
      margin: medianSeedMargin(rs.values(maskError), positions),
      threshold: solves ? c.solveThreshold : c.failThreshold,
      direction: solves ? "<=" : ">=",
      expected: "pass",
      evidence: "trained",
      calibration: calibrationOf(pilot, `S3-${arm.id}`),
      detail: `R = ${rf.radius}, contiguous ${rf.contiguous}; R* = ${c.task.area + 2}; ` +
        `unreachable fraction f(R) = ${unreachableFraction(rf.radius, c.task).toFixed(3)}. ` +
        THRESHOLD_REASON,
      ...rs.record(maskError),
    }));
  }
  const solving = c.arms.filter((a) => a.expect === "solves");
  if (solving.length === 2) checks.push(paramsCheck(c, solving[0], solving[1]));
  const ssmRows = c.ssmArms.map((arm) => {
    const err = results.get(arm.id)!.spread(maskError);
    const model = ssmConfig(c, arm);
    return {
      arm: arm.id,
      label: arm.label,
      layer: arm.layer,
      params: mambaParamCount(model),
      stateBits: mambaStateBits(model),
      maskErrorMedian: err.median,
      maskErrorMin: err.lo,
      maskErrorMax: err.hi,
      valLossMedian: results.get(arm.id)!.spread((r) => r.valLoss).median,
    };
  });

  const figures = buildFigures(c, results, seeds);
  return {
    config: { ...c, seedsUsed: seeds, calibration: pilot ?? null } as unknown as Record<
      string,
      unknown
    >,
    checks,
    metrics: {
      seedTable: s1.rows,
      arms: armRows,
      // Trained on the same task, drawn beside the CNNs; no check reads them.
      ssmArms: ssmRows,
      perSeed: Object.fromEntries(
        [...results].map(([id, rs]) => [
          id,
          rs.results.map((r) => ({
            seed: r.seed,
            maskError: round6(r.maskError),
            valLoss: round6(r.valLoss),
            byPosition: r.byPosition.map(round6),
          })),
        ]),
      ),
    },
    figures,
    phases: phases.seconds,
  };
}

/** The dilated solving arm needs fewer parameters than the deeper one. */
function paramsCheck(c: SelectiveCopyConfig, solveA: Arm, solveB: Arm): CheckResult {
  const pA = dilatedCnnParamCount(modelConfig(c, solveA));
  const pB = dilatedCnnParamCount(modelConfig(c, solveB));
  const deeper = pA > pB ? solveA : solveB;
  const dilated = deeper === solveA ? solveB : solveA;
  const ratio = Math.min(pA, pB) / Math.max(pA, pB);
  return check({
    id: "S3-params",
    title: `${dilated.label} needs fewer parameters than ${deeper.label}`,
    source: `${SOURCE}: "reach the performance of the 12 layer network … with only 6 layers"`,
    metric: "parameter ratio dilated / deeper",
    measured: round6(ratio),
    threshold: 1,
    direction: "<",
    expected: "pass",
    evidence: "arithmetic",
    detail: `${Math.min(pA, pB).toLocaleString("en")} vs ${
      Math.max(pA, pB).toLocaleString("en")
    } parameters.`,
  });
}

const THRESHOLD_REASON = "Thresholds: fail ≥ 20% mask error (the seed's failing arms sit near " +
  "47%; f(R) bounds the unreachable share) and solve ≤ 3%, CLAIMS.md S3's bound, in both " +
  "profiles. The full profile trains 3 seeds × 4 arms × 1,800 steps (115k examples, against " +
  "the seed's 1M) to fit 20 minutes on 2 cores; on the calibration seeds its solving arms " +
  "ended at 2.93% (12 layers, inside its bounds) and 1.86% (dilated), so a full-profile fail " +
  "or inconclusive of a 'solves' check means the claim is only partially reproduced at this " +
  "budget, not that it is refuted.";

/** The captions' sentence on the SSM arms, where a profile trains them. */
function ssmNote(c: SelectiveCopyConfig): string {
  if (!c.ssmArms.length) return "";
  return ` ${c.ssmArms.map((a) => a.label).join(" and ")}: selective-copying-ssm's model, ` +
    "trained with the same recipe on the same task, drawn for comparison and judged by no check.";
}

function buildFigures(
  c: SelectiveCopyConfig,
  results: Map<string, SeedResults<ArmSeedResult>>,
  seeds: number[],
): FigureData[] {
  // The CNN arms, then the SSM arms drawn beside them.
  const drawn = [...c.arms, ...c.ssmArms];
  const curve: FigureData["data"] = [];
  for (const arm of drawn) {
    const rs = results.get(arm.id)!;
    rs.results[0].curve.forEach((pt, k) => {
      const { median, lo, hi } = rs.spread((r) => r.curve[k].maskError);
      curve.push({ arm: arm.label, examples: pt.examples, maskError: median, lo, hi });
    });
  }
  const byPos: FigureData["data"] = [];
  for (const arm of drawn) {
    const rs = results.get(arm.id)!;
    for (let j = 0; j < c.task.items; j++) {
      const error = rs.spread((r) => r.byPosition[j]).median;
      byPos.push({ arm: arm.label, position: j, error });
    }
  }
  const table: FigureData["data"] = [];
  for (const arm of c.arms) {
    const ours = results.get(arm.id)!.median((r) => r.valLoss);
    const seedRow = SEED_TABLE.find((r) =>
      r.kernel === c.kernel && r.dilations.join() === arm.dilations.join()
    );
    table.push({
      arm: arm.id,
      source: `ours (${c.steps * c.batch} examples)`,
      valLoss: round6(ours),
    });
    if (seedRow && c.task.area === 40) {
      table.push({ arm: arm.id, source: "seed 000 (1M examples)", valLoss: seedRow.valLoss });
    }
  }
  return [
    {
      id: "mask-error-curve",
      title: "Mask error vs training examples",
      caption:
        `Median mask error over seeds ${seeds.join(", ")} on ${c.validation} fixed validation ` +
        `strings (band: min–max). Rules: solve and fail thresholds.` + ssmNote(c),
      mark: "line",
      data: curve,
      x: { field: "examples", title: "training examples", type: "quantitative" },
      y: {
        field: "maskError",
        title: "mask error (fraction of answer bytes wrong)",
        type: "quantitative",
      },
      color: { field: "arm", title: "arm", type: "nominal" },
      band: { lower: "lo", upper: "hi" },
      rules: [
        { axis: "y", value: c.solveThreshold, label: `solve ≤ ${c.solveThreshold}` },
        { axis: "y", value: c.failThreshold, label: `fail ≥ ${c.failThreshold}` },
      ],
    },
    {
      id: "error-by-position",
      title: "Error by answer position",
      caption: "Median mask error at each answer byte (0 = first). Arms that cannot reach far " +
        "enough fail at the start of the answer, whose letters lie furthest to the left." +
        ssmNote(c),
      mark: "bar",
      data: byPos,
      x: { field: "position", title: "answer position j", type: "ordinal" },
      y: { field: "error", title: "mask error", type: "quantitative" },
      color: { field: "arm", title: "arm", type: "nominal" },
    },
    {
      id: "seed-table-vs-ours",
      title: "Validation loss: seed table next to ours",
      caption: "Arms by id (layers L, dilations d). Mean cross-entropy over all positions of the " +
        "validation strings (the seed's " +
        "'validation loss'); the seed trained 1M examples on a GPU, we train fewer. The seed's " +
        "rows appear only for its own task (area 40, 10 letters: the full profile).",
      mark: "point",
      data: table,
      x: { field: "arm", title: "arm", type: "nominal" },
      y: {
        field: "valLoss",
        title: "validation loss (nats, log scale)",
        type: "quantitative",
        scale: "log",
      },
      color: { field: "source", title: "source", type: "nominal" },
    },
  ];
}

/** The `selective-copy` suite. */
export const selectiveCopy: Suite = {
  id: ID,
  title: "Selective copying with dilated 1-D CNNs",
  claim: "Dilation schedules give a 6-layer CNN the reach of a deeper one: a receptive field " +
    "covering the whole sequence solves selective copying, at half the parameters of depth.",
  source: SOURCE,
  pilots: PILOTS,
  run,
};

/**
 * The train step as one ONNX graph: forward, loss, reverse-mode gradients, global-norm
 * clipping and the AdamW update. Inputs: parameters `p.<name>`, AdamW moments `m.<name>`,
 * `v.<name>`, the 1-based step count `step` and the learning rate `lr` (both float32 scalars,
 * the schedule lives in TS), and the batch. Outputs: `loss`, `grad_norm`, and the next
 * `next.p.<name>`, `next.m.<name>`, `next.v.<name>`.
 * @module
 */
import { type DType, Graph, type Value } from "./graph.ts";
import { gradients } from "./autodiff.ts";
import { add, div, min, mul, pow, reduceSum, sqrt, sub } from "./ops.ts";

/** A trainable parameter: its initial value and whether weight decay applies. */
export interface ParamSpec {
  name: string;
  shape: number[];
  init: Float32Array;
  /** Weight decay applies (matrices); false for biases, embeddings, norms by default. */
  decay: boolean;
}

/** AdamW hyper-parameters (PyTorch's semantics: decoupled decay, bias-corrected moments). */
export interface AdamWConfig {
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  /** Clip the global gradient norm to this value; null: no clipping. */
  clipNorm: number | null;
}

/** PyTorch's AdamW defaults with weight decay 0.01 and clipping at 1. */
export const ADAMW_DEFAULTS: AdamWConfig = {
  beta1: 0.9,
  beta2: 0.999,
  eps: 1e-8,
  weightDecay: 0.01,
  clipNorm: 1.0,
};

/** A batch input of the train step. */
export interface BatchInput {
  name: string;
  dtype: DType;
  shape: number[];
}

/** Everything needed to build a train step. */
export interface TrainStepSpec {
  name: string;
  params: readonly ParamSpec[];
  batch: readonly BatchInput[];
  /** Builds the scalar loss from parameter and batch values. */
  loss: (params: Record<string, Value>, batch: Record<string, Value>) => Value;
  optimizer: AdamWConfig;
}

/** Declares every parameter of `params` as a float32 graph input named `p.<name>`. */
export function paramInputs(g: Graph, params: readonly ParamSpec[]): Record<string, Value> {
  return Object.fromEntries(
    params.map((p) => [p.name, g.input(`p.${p.name}`, "float32", p.shape)]),
  );
}

/** Declares every batch input. */
export function batchInputs(g: Graph, batch: readonly BatchInput[]): Record<string, Value> {
  return Object.fromEntries(batch.map((b) => [b.name, g.input(b.name, b.dtype, b.shape)]));
}

/** Builds the train-step graph of `spec`. */
export function buildTrainStep(spec: TrainStepSpec): Graph {
  const g = new Graph(spec.name);
  const opt = spec.optimizer;
  const p = paramInputs(g, spec.params);
  const m = Object.fromEntries(
    spec.params.map((s) => [s.name, g.input(`m.${s.name}`, "float32", s.shape)]),
  );
  const v = Object.fromEntries(
    spec.params.map((s) => [s.name, g.input(`v.${s.name}`, "float32", s.shape)]),
  );
  const step = g.input("step", "float32", []);
  const lr = g.input("lr", "float32", []);
  const batch = batchInputs(g, spec.batch);

  const loss = spec.loss(p, batch);
  let grads = gradients(loss, spec.params.map((s) => p[s.name]));

  // Global-norm clipping as torch.nn.utils.clip_grad_norm_: scale = min(1, c/(‖g‖ + 1e-6)).
  const sq = grads.map((gr) => reduceSum(mul(gr, gr)));
  const norm = sqrt(sq.reduce((a, b) => add(a, b)));
  if (opt.clipNorm !== null) {
    const scale = min(div(opt.clipNorm, add(norm, 1e-6)), 1);
    grads = grads.map((gr) => mul(gr, scale));
  }

  // Bias corrections: lr_t = lr/(1 − β1^t); denominator √v/√(1 − β2^t) + ε.
  const stepSize = div(lr, sub(1, pow(g.scalar(opt.beta1), step)));
  const bc2Sqrt = sqrt(sub(1, pow(g.scalar(opt.beta2), step)));
  spec.params.forEach((s, i) => {
    const gr = grads[i];
    const m1 = add(mul(m[s.name], opt.beta1), mul(gr, 1 - opt.beta1));
    const v1 = add(mul(v[s.name], opt.beta2), mul(mul(gr, gr), 1 - opt.beta2));
    let p0 = p[s.name];
    if (s.decay && opt.weightDecay > 0) p0 = mul(p0, sub(1, mul(lr, opt.weightDecay)));
    const update = div(m1, add(div(sqrt(v1), bc2Sqrt), opt.eps));
    g.output(sub(p0, mul(update, stepSize)), `next.p.${s.name}`);
    g.output(m1, `next.m.${s.name}`);
    g.output(v1, `next.v.${s.name}`);
  });
  g.output(loss, "loss");
  g.output(norm, "grad_norm");
  return g;
}

/** Options of {@linkcode learningRate}. */
export interface ScheduleConfig {
  lr: number;
  warmupSteps: number;
  totalSteps: number;
  /** Final rate as a fraction of `lr` (default 0). */
  minLrRatio?: number;
}

/**
 * Linear warm-up to `lr` over `warmupSteps`, then cosine decay to `minLrRatio·lr` at
 * `totalSteps`. `step` is 1-based, as the train step's `step` input.
 */
export function learningRate(step: number, c: ScheduleConfig): number {
  const floor = (c.minLrRatio ?? 0) * c.lr;
  if (step <= c.warmupSteps) return (c.lr * step) / Math.max(1, c.warmupSteps);
  const span = Math.max(1, c.totalSteps - c.warmupSteps);
  const progress = Math.min(1, (step - c.warmupSteps) / span);
  return floor + (c.lr - floor) * 0.5 * (1 + Math.cos(Math.PI * progress));
}

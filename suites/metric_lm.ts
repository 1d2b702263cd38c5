/**
 * The trained half of the metric-attention suite (CLAIMS.md §3.2 MT6, "the network seemed to
 * perform the same"): a small character-level language model trained twice per seed, once with
 * standard causal multi-head attention and once with the README's metric attention (causal
 * mask added), everything else equal — the same corpus, batches, initial draws of the shared
 * weights' generator, schedule and budget.
 *
 * The corpus is `fixtures/char_corpus.ts`'s seeded synthetic language (nothing downloaded): words
 * of a fixed lexicon under a small grammar (local structure) and names that recur within a
 * paragraph only (long-range structure, which only attention can exploit).
 *
 * Exploratory (no threshold, CLAIMS.md MT6): an induction probe, where each row is a random
 * string of letters followed by the same string again; the loss on the repeat measures how
 * well a model copies from context, the place where metric heads' symmetric scores (a token
 * matches itself as strongly as it matches its predecessor's successor) could differ.
 * @module
 */
import { CHAR_ALPHABET, charCorpus, charIds, corpusBatch } from "../fixtures/char_corpus.ts";
import { Prng } from "../fixtures/prng.ts";
import { dataSeed, deriveSeed, initSeed } from "../fixtures/seeds.ts";
import {
  type AttentionKind,
  type TransformerConfig,
  transformerLogits,
  transformerParams,
  transformerParamShapes,
} from "../models/transformer.ts";
import { crossEntropy } from "../onnx/nn.ts";
import { ADAMW_DEFAULTS, type AdamWConfig } from "../onnx/optim.ts";
import { tensor } from "../onnx/runtime.ts";
import { stateParams } from "../onnx/step_state.ts";
import { trainCached } from "../runner/training.ts";
import { chunkedEvaluator, type EvalContext } from "./harness.ts";
import type { SuiteContext, SuiteProfile } from "./suite.ts";

/** One arm of the comparison. */
export interface LmArm {
  id: AttentionKind;
  label: string;
}

export const LM_ARMS: readonly LmArm[] = [
  { id: "standard", label: "standard attention" },
  { id: "metric", label: "metric attention" },
];

/** A profile's language-model comparison. */
export interface MetricLmConfig {
  /** Model width, heads (N_k = dModel/heads), layers, MLP width. */
  dModel: number;
  heads: number;
  layers: number;
  mlp: number;
  context: number;
  batch: number;
  steps: number;
  lr: number;
  warmupSteps: number;
  minLrRatio: number;
  optimizer: AdamWConfig;
  seeds: number;
  /** Characters of the training and validation texts (both generated once, seed-independent). */
  trainChars: number;
  validChars: number;
  /** Validation loss every this many steps (and after the last). */
  evalEvery: number;
  /** Rows of the induction probe, each a random string of `context / 2` letters twice. */
  inductionRows: number;
}

const COMMON = {
  dModel: 64,
  heads: 4,
  layers: 2,
  mlp: 256,
  context: 64,
  batch: 32,
  warmupSteps: 100,
  minLrRatio: 0.1,
  optimizer: { ...ADAMW_DEFAULTS, weightDecay: 0.1, clipNorm: 1.0 },
  seeds: 3,
  trainChars: 400_000,
  validChars: 32_768,
  inductionRows: 256,
};

/**
 * The profiles: CLAIMS.md MT6's model (2 layers, d 64, 4 heads of N_k 16, context 64) and
 * ~2,000 steps in full; quick trains fewer steps. Smoke is for tests.
 */
export const METRIC_LM: Record<SuiteProfile, MetricLmConfig> = {
  full: { ...COMMON, steps: 2000, lr: 3e-3, evalEvery: 100 },
  quick: { ...COMMON, steps: 600, lr: 3e-3, evalEvery: 50 },
  smoke: {
    ...COMMON,
    dModel: 8,
    heads: 2,
    layers: 1,
    mlp: 16,
    context: 16,
    batch: 4,
    steps: 3,
    lr: 1e-3,
    warmupSteps: 1,
    seeds: 1,
    trainChars: 4_000,
    validChars: 512,
    evalEvery: 3,
    inductionRows: 4,
  },
};

/** The transformer of an arm: learned positions (as nanoGPT, nlp-metaformer's base), tied head. */
export function lmModel(c: MetricLmConfig, arm: LmArm): TransformerConfig {
  return {
    vocab: CHAR_ALPHABET.length,
    dModel: c.dModel,
    heads: c.heads,
    layers: c.layers,
    mlp: c.mlp,
    position: "learned",
    maxLen: c.context,
    tiedHead: true,
    ...(arm.id === "metric" ? { attention: "metric" as const } : {}),
  };
}

/** One arm trained on one seed. */
export interface LmSeedResult {
  seed: number;
  /** Validation loss (nats/char) after the last step. */
  valLoss: number;
  curve: { step: number; valLoss: number }[];
  /** Mean loss on characters 2.. of the induction strings' first occurrence (nats/char). */
  inductionFirst: number;
  /** The same characters in the repeat, where the first occurrence is in context. */
  inductionRepeat: number;
  cached: boolean;
  seconds: number;
}

/** The fixed texts of a profile, as ids: the training text and the validation windows. */
export interface LmData {
  train: Int32Array;
  /** [rows, context + 1]: non-overlapping windows of the validation text. */
  valid: Int32Array;
  validRows: number;
  /** [rows, context + 1]: the induction probe. */
  induction: Int32Array;
}

/** The letters the induction strings draw from (a–z of the alphabet). */
const LETTERS = "abcdefghijklmnopqrstuvwxyz";

export function lmData(suite: string, c: MetricLmConfig): LmData {
  const train = charIds(charCorpus(new Prng(dataSeed(suite, "train", 0)), c.trainChars));
  const validText = charIds(charCorpus(new Prng(dataSeed(suite, "valid", 0)), c.validChars));
  const w = c.context + 1;
  const validRows = Math.floor(validText.length / w);
  const valid = validText.subarray(0, validRows * w);
  const half = c.context / 2;
  const prng = new Prng(dataSeed(suite, "test", 0));
  const letters = charIds(LETTERS);
  const induction = new Int32Array(c.inductionRows * w);
  for (let r = 0; r < c.inductionRows; r++) {
    const s = Array.from({ length: half }, () => letters[prng.nextInt(letters.length)]);
    // [s, s, s[0]]: the last column is the target of the last position.
    induction.set([...s, ...s, s[0]], r * w);
  }
  return { train, valid, validRows, induction };
}

type LossEvaluator = (
  values: ReadonlyMap<string, Float32Array>,
  rows: Int32Array,
  count: number,
  from?: number,
  to?: number,
) => Promise<number>;

/**
 * Mean next-character loss of `count` rows [count, context + 1] over positions from..to − 1
 * (default: all; the targets are each row shifted by one).
 */
async function lossEvaluator(
  ctx: EvalContext,
  c: MetricLmConfig,
  model: TransformerConfig,
  name: string,
): Promise<LossEvaluator> {
  const T = c.context;
  const V = model.vocab;
  const evaluator = await chunkedEvaluator(ctx, {
    name,
    params: transformerParamShapes(model),
    inputs: [{ name: "ids", dtype: "int32", width: T }],
    chunk: 64,
    outputs: (p, x) => ({ logits: transformerLogits(model, p, x.ids) }),
  });
  return async (values, rows, count, from = 0, to = T) => {
    const ids = new Int32Array(count * T);
    for (let r = 0; r < count; r++) ids.set(rows.subarray(r * (T + 1), r * (T + 1) + T), r * T);
    let sum = 0, n = 0;
    await evaluator.run(values, count, { ids }, (out, start, rowsHere) => {
      const logits = out.logits.data as Float32Array; // [chunk, T, V]
      for (let b = 0; b < rowsHere; b++) {
        for (let t = from; t < to; t++) {
          const o = (b * T + t) * V;
          let max = -Infinity;
          for (let v = 0; v < V; v++) max = Math.max(max, logits[o + v]);
          let z = 0;
          for (let v = 0; v < V; v++) z += Math.exp(logits[o + v] - max);
          const target = rows[(start + b) * (T + 1) + t + 1];
          sum += Math.log(z) + max - logits[o + target];
          n++;
        }
      }
    });
    return sum / n;
  };
}

/** Trains (or loads) one arm on one seed and measures it. */
export async function trainLmArm(
  ctx: SuiteContext,
  suite: string,
  c: MetricLmConfig,
  data: LmData,
  arm: LmArm,
  seed: number,
): Promise<LmSeedResult> {
  const model = lmModel(c, arm);
  const evaluate = await lossEvaluator(ctx, c, model, `${suite}-lm-${arm.id}`);
  const T = c.context;
  const batchSeed = dataSeed(suite, "train", seed);
  const trained = await trainCached(ctx, {
    label: `${suite} ${arm.id} seed ${seed}`,
    key: { suite, lm: c, model, seed },
    spec: {
      name: `${suite}-lm-${arm.id}`,
      // The same generator seed for both arms: the weights they share in shape draw alike.
      params: transformerParams(model, new Prng(initSeed(suite, "lm", seed))),
      batch: [
        { name: "ids", dtype: "int32", shape: [c.batch, T] },
        { name: "target", dtype: "int32", shape: [c.batch, T] },
      ],
      loss: (p, b) => crossEntropy(transformerLogits(model, p, b.ids), b.target),
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
      const b = corpusBatch(data.train, new Prng(deriveSeed("batch", batchSeed, step)), c.batch, T);
      return {
        ids: tensor("int32", b.input, [c.batch, T]),
        target: tensor("int32", b.target, [c.batch, T]),
      };
    },
    evalEvery: c.evalEvery,
    evaluate: async (_step, values) => ({
      valLoss: await evaluate(values, data.valid, data.validRows),
    }),
  });
  const values = stateParams(trained.state);
  return {
    seed,
    valLoss: trained.state.evals.at(-1)!.metrics.valLoss,
    curve: trained.state.evals.map((e) => ({ step: e.step, valLoss: e.metrics.valLoss })),
    // Positions 0 .. T/2 − 2 predict characters 1 .. T/2 − 1 of a string never seen; positions
    // T/2 .. T − 2 predict them again with the first occurrence in context.
    inductionFirst: await evaluate(values, data.induction, c.inductionRows, 0, T / 2 - 1),
    inductionRepeat: await evaluate(values, data.induction, c.inductionRows, T / 2, T - 1),
    cached: trained.cached,
    seconds: trained.seconds,
  };
}

/**
 * Held-out loss (nats/char) of a count-based n-gram model of the training text (order 1 =
 * unigram, 2 = bigram), add-one smoothed, on the targets of the validation windows: the level a
 * model that uses only the previous order − 1 characters reaches.
 */
export function ngramLoss(data: LmData, context: number, order: 1 | 2, vocab: number): number {
  const counts = new Float64Array(vocab * vocab);
  const totals = new Float64Array(vocab);
  const uni = new Float64Array(vocab);
  for (let i = 0; i < data.train.length; i++) {
    uni[data.train[i]]++;
    if (i > 0) {
      counts[data.train[i - 1] * vocab + data.train[i]]++;
      totals[data.train[i - 1]]++;
    }
  }
  const w = context + 1;
  let sum = 0, n = 0;
  for (let r = 0; r < data.validRows; r++) {
    for (let t = 0; t < context; t++) {
      const prev = data.valid[r * w + t];
      const next = data.valid[r * w + t + 1];
      const p = order === 1
        ? (uni[next] + 1) / (data.train.length + vocab)
        : (counts[prev * vocab + next] + 1) / (totals[prev] + vocab);
      sum -= Math.log(p);
      n++;
    }
  }
  return sum / n;
}

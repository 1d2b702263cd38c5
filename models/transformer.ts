/**
 * The decoder-only transformers of "Repeat After Me: Transformers are Better than State Space
 * Models at Copying" (Jelassi et al. 2024, §3 and CLAIMS.md §1.2), scaled down (CLAIMS.md §1.4):
 *
 *   token embedding (+ learned positions) → L × [x + attn(LN(x)); x + MLP(LN(x))]
 *   → LN → head (tied to the embedding or not)
 *
 * with MLP(x) = GELU(x·W_fc + b)·W_proj + b. Position information by `position`:
 * - `nope`: none (T_nope); the causal mask alone.
 * - `learned`: absolute position embeddings added to the token embeddings (GPT-2).
 * - `rope`: rotary embeddings on `ropeFraction` of each head's dims, base 10000 (T_rope, GPT-NeoX
 *   `rotary_pct = 0.25`).
 * - `alibi`: bias −slope_h·(i − j), slopes 2^(−8(h+1)/H) (T_alibi; the code's MPT form differs by
 *   a per-row constant, which the softmax ignores).
 * - `hard-alibi`: head h sees only the last `hardAlibiWindows[h]` positions, null = NoPE head
 *   (T_hard_alibi; the code masks heads 0..k−1 with windows 1..k, see {@linkcode hardAlibiWindows}).
 *
 * Attention by `attention` (default `standard`): `metric` replaces a layer's attention with the
 * metric-tensor attention of nlp-metaformer (CLAIMS.md §3.1, the README variant with a causal
 * mask; `onnx/custom/metric_attention.ts`): one projection p = x·W_p + b_p per head, scores
 * p M pᵀ/√hs with a symmetric metric M per head (stored packed), values = the same p, then the
 * output projection; the rest of the block is unchanged. The metric starts as the identity, so
 * an untrained metric head is a tied-key head (q = k = p); it takes no weight decay, which
 * would pull it towards 0 rather than towards a plain dot product. The op takes only the causal
 * mask, so `metric` goes with `nope` or `learned` positions.
 *
 * Deviations from the HF GPT-NeoX the paper trains: sequential (not parallel) residual, as in
 * GPT-2/nanoGPT; plain q·k in T_nope/T_hard_alibi (the code's `cat(q, q_pass)` counts 75% of the
 * dims twice, CLAIMS.md §1.2). Initialisation as GPT-2: weights N(0, 0.02), residual projections
 * N(0, 0.02/√(2L)), biases 0, LayerNorm γ = 1, β = 0.
 *
 * LayerNorm is one op, `RowLayerNorm` (ONNX's `LayerNormalization` as its definition, and a
 * native kernel), rather than the composed `layerNorm` of `onnx/nn.ts`: the single node cut the
 * train step's node count by ~10% and its time by ~8% (bench/transformer_step_bench.ts).
 * @module
 */
import type { RandomSource } from "../fixtures/prng.ts";
import { staticShape, type Value } from "../onnx/graph.ts";
import { add, matMul, reshape, slice, transpose } from "../onnx/ops.ts";
import { rowLayerNorm } from "../onnx/custom/layer_norm.ts";
import { embedding, linear, linearGelu, linearResidual } from "../onnx/nn.ts";
import {
  drawParams,
  type ParamLayout,
  type ParamShape,
  paramShapes,
  type ParamSpec,
} from "../onnx/optim.ts";
import {
  type AttentionOptions,
  causalSelfAttention,
  headBias,
  ropeTables,
} from "../onnx/attention.ts";
import { alibiBias, alibiSlopes, causalBias, hardAlibiBias } from "../onnx/attention_bias.ts";
import { metricAttention, packedMetricIndex } from "../onnx/custom/metric_attention.ts";

/** How a transformer knows where a token is. */
export type PositionKind = "nope" | "learned" | "rope" | "alibi" | "hard-alibi";

/** A layer's attention: query-key-value heads, or metric-tensor heads (see the module doc). */
export type AttentionKind = "standard" | "metric";

/** Shape of a transformer. */
export interface TransformerConfig {
  vocab: number;
  dModel: number;
  heads: number;
  layers: number;
  /** Hidden width of the MLP (default 4·dModel). */
  mlp?: number;
  position: PositionKind;
  /** Longest context, needed by `learned` positions (table rows). */
  maxLen?: number;
  /** Fraction of each head's dims that rotate under `rope` (default 0.25, as GPT-NeoX). */
  ropeFraction?: number;
  /** One window per head under `hard-alibi`: the head sees the last m positions; null = NoPE. */
  hardAlibiWindows?: readonly (number | null)[];
  /** Head weights = embedding table (transposed); else a separate [dModel, vocab] matrix. */
  tiedHead: boolean;
  /** Every layer's attention (default `standard`). */
  attention?: AttentionKind;
}

const KEYS: readonly string[] = [
  "vocab",
  "dModel",
  "heads",
  "layers",
  "mlp",
  "position",
  "maxLen",
  "ropeFraction",
  "hardAlibiWindows",
  "tiedHead",
  "attention",
];
const POSITIONS: readonly PositionKind[] = ["nope", "learned", "rope", "alibi", "hard-alibi"];
const ATTENTIONS: readonly AttentionKind[] = ["standard", "metric"];
/** The positions the metric op can take: it adds only the causal mask to the scores. */
const METRIC_POSITIONS: readonly PositionKind[] = ["nope", "learned"];

/** Init scale of every weight matrix and embedding (GPT-2). */
const INIT_STD = 0.02;
/** RoPE base (GPT-NeoX `rotary_emb_base`). */
const ROPE_BASE = 10000;

/**
 * The Hard-ALiBi windows of the paper's code: heads 0..masked−1 see the last 1..masked positions
 * (head h: offsets 0..h), the other heads are NoPE. The code's default is half the heads.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { hardAlibiWindows } from "./transformer.ts";
 *
 * assertEquals(hardAlibiWindows(4), [1, 2, null, null]);
 * ```
 */
export function hardAlibiWindows(heads: number, masked = Math.floor(heads / 2)): (number | null)[] {
  if (!Number.isInteger(masked) || masked < 0 || masked > heads) {
    throw new RangeError(
      `Cannot build Hard-ALiBi windows as masked must be an integer from 0 to ${heads}: current value is ${masked}`,
    );
  }
  return Array.from({ length: heads }, (_, h) => (h < masked ? h + 1 : null));
}

/** MLP width, defaulting to 4·dModel. */
function mlpWidth(c: TransformerConfig): number {
  return c.mlp ?? 4 * c.dModel;
}

/** Rotated dims per head under `rope`: ⌊hs·ropeFraction⌋ (GPT-NeoX `rotary_ndims`). */
export function rotaryDims(c: TransformerConfig): number {
  return Math.floor((c.dModel / c.heads) * (c.ropeFraction ?? 0.25));
}

/** Validates a config; RangeError naming the field and value, TypeError for unknown keys. */
export function checkTransformerConfig(c: TransformerConfig): void {
  const fail = (what: string, value: unknown): never => {
    throw new RangeError(
      `Cannot build a transformer as ${what}: current value is ${JSON.stringify(value)}`,
    );
  };
  for (const key of Object.keys(c)) {
    if (!KEYS.includes(key)) {
      throw new TypeError(`Cannot build a transformer as ${key} is not a config field`);
    }
  }
  const positive = (name: string, v: number | undefined) => {
    if (!Number.isInteger(v) || v! < 1) fail(`${name} must be a positive integer`, v);
  };
  positive("vocab", c.vocab);
  positive("dModel", c.dModel);
  positive("heads", c.heads);
  positive("layers", c.layers);
  positive("mlp", mlpWidth(c));
  if (c.dModel % c.heads !== 0) fail(`heads must divide dModel = ${c.dModel}`, c.heads);
  if (!POSITIONS.includes(c.position)) fail(`position must be one of ${POSITIONS}`, c.position);
  if (c.position === "learned") positive("maxLen", c.maxLen);
  if (c.position === "rope") {
    const f = c.ropeFraction ?? 0.25;
    if (!(f > 0 && f <= 1)) fail("ropeFraction must be in (0, 1]", f);
    const rd = rotaryDims(c);
    if (rd < 2 || rd % 2 !== 0) {
      fail(`ropeFraction must rotate an even number ≥ 2 of the ${c.dModel / c.heads} head dims`, f);
    }
  }
  if (c.position === "hard-alibi") {
    const w = c.hardAlibiWindows;
    if (!w || w.length !== c.heads) fail(`hardAlibiWindows must hold one entry per head`, w);
    w!.forEach((m, h) => {
      if (m !== null && (!Number.isInteger(m) || m < 1)) {
        fail(`hardAlibiWindows[${h}] must be a positive integer or null`, m);
      }
    });
  }
  if (typeof c.tiedHead !== "boolean") fail("tiedHead must be a boolean", c.tiedHead);
  const attention = c.attention ?? "standard";
  if (!ATTENTIONS.includes(attention)) fail(`attention must be one of ${ATTENTIONS}`, attention);
  if (attention === "metric" && !METRIC_POSITIONS.includes(c.position)) {
    fail(`position must be one of ${METRIC_POSITIONS} under metric attention`, c.position);
  }
}

/**
 * Parameter count: V·C [+ maxLen·C learned] + L·(attention + 2C·M + 5C + M) + 2C [+ C·V untied];
 * per block: MLP 2C·M + M + C, two LayerNorms 4C, and the attention: standard QKV 3C² + 3C and
 * output C² + C; metric P C² + C, packed metrics H·hs(hs+1)/2 and output C² + C.
 */
export function transformerParamCount(c: TransformerConfig): number {
  checkTransformerConfig(c);
  const C = c.dModel;
  const M = mlpWidth(c);
  const hs = C / c.heads;
  const attention = c.attention === "metric"
    ? 2 * C * C + 2 * C + (c.heads * hs * (hs + 1)) / 2
    : 4 * C * C + 4 * C;
  const block = attention + 2 * C * M + 5 * C + M;
  const positions = c.position === "learned" ? c.maxLen! * C : 0;
  const head = c.tiedHead ? 0 : C * c.vocab;
  return c.vocab * C + positions + c.layers * block + 2 * C + head;
}

/**
 * The parameters in a fixed order, each with its initialiser. Weight decay applies to the weight
 * matrices only (not biases, LayerNorms or embeddings).
 */
function transformerLayout(c: TransformerConfig): ParamLayout[] {
  checkTransformerConfig(c);
  const C = c.dModel;
  const M = mlpWidth(c);
  const residualStd = INIT_STD / Math.sqrt(2 * c.layers);
  const layout: ParamLayout[] = [];
  const normal = (name: string, shape: number[], std: number, decay: boolean) =>
    layout.push({
      name,
      shape,
      decay,
      draw: (prng) => new Float32Array(shape[0] * shape[1]).map(() => prng.normal() * std),
    });
  const matrix = (name: string, rows: number, cols: number, std = INIT_STD) =>
    normal(name, [rows, cols], std, true);
  const vector = (name: string, n: number, fill: number) =>
    layout.push({ name, shape: [n], decay: false, draw: () => new Float32Array(n).fill(fill) });
  normal("wte", [c.vocab, C], INIT_STD, false);
  if (c.position === "learned") normal("wpe", [c.maxLen!, C], INIT_STD, false);
  for (let l = 0; l < c.layers; l++) {
    vector(`h${l}.ln1.g`, C, 1);
    vector(`h${l}.ln1.b`, C, 0);
    if (c.attention === "metric") {
      matrix(`h${l}.attn.p.w`, C, C);
      vector(`h${l}.attn.p.b`, C, 0);
      const identity = identityMetric(c.heads, C / c.heads);
      layout.push({
        name: `h${l}.attn.m`,
        shape: [c.heads, identity.length / c.heads],
        decay: false,
        draw: () => identity.slice(),
      });
    } else {
      matrix(`h${l}.attn.qkv.w`, C, 3 * C);
      vector(`h${l}.attn.qkv.b`, 3 * C, 0);
    }
    matrix(`h${l}.attn.proj.w`, C, C, residualStd);
    vector(`h${l}.attn.proj.b`, C, 0);
    vector(`h${l}.ln2.g`, C, 1);
    vector(`h${l}.ln2.b`, C, 0);
    matrix(`h${l}.mlp.fc.w`, C, M);
    vector(`h${l}.mlp.fc.b`, M, 0);
    matrix(`h${l}.mlp.proj.w`, M, C, residualStd);
    vector(`h${l}.mlp.proj.b`, C, 0);
  }
  vector("lnf.g", C, 1);
  vector("lnf.b", C, 0);
  if (!c.tiedHead) matrix("head.w", C, c.vocab);
  return layout;
}

/** H identity metrics of hs dims, packed as the op reads them: [H, hs(hs+1)/2] row-major. */
function identityMetric(heads: number, hs: number): Float32Array {
  const index = packedMetricIndex(hs);
  const L = (hs * (hs + 1)) / 2;
  const m = new Float32Array(heads * L);
  for (let h = 0; h < heads; h++) for (let k = 0; k < hs; k++) m[h * L + index[k * hs + k]] = 1;
  return m;
}

/** Initial parameters, drawn from `prng` in a fixed order (see `transformerLayout`). */
export function transformerParams(c: TransformerConfig, prng: RandomSource): ParamSpec[] {
  return drawParams(transformerLayout(c), prng);
}

/** Parameter names and shapes, for graphs that take trained values (no initial values drawn). */
export function transformerParamShapes(c: TransformerConfig): ParamShape[] {
  return paramShapes(transformerLayout(c));
}

/** The attention options shared by every layer for a context of T tokens. */
function attentionOptions(c: TransformerConfig, g: Value["graph"], T: number): AttentionOptions {
  const hs = c.dModel / c.heads;
  switch (c.position) {
    case "alibi":
      return {
        heads: c.heads,
        bias: headBias(g, alibiSlopes(c.heads).map((s) => alibiBias(T, s)), T),
      };
    case "hard-alibi": {
      const biases = c.hardAlibiWindows!.map((m) => hardAlibiBias(T, m));
      return { heads: c.heads, bias: headBias(g, biases, T) };
    }
    case "rope":
      return {
        heads: c.heads,
        bias: headBias(g, [causalBias(T)], T),
        rope: ropeTables(g, T, hs, rotaryDims(c), { base: ROPE_BASE }),
      };
    default:
      return { heads: c.heads, bias: headBias(g, [causalBias(T)], T) };
  }
}

/** x + metric attention of a [B, T, C]: p = a·W_p + b_p per head, MetricAttention, projection. */
function metricSelfAttention(
  p: Record<string, Value>,
  h: string,
  a: Value,
  heads: number,
  x: Value,
): Value {
  const [B, T, C] = staticShape(a, "apply metric attention");
  const hs = C / heads;
  const proj = linear(a, p[`${h}.attn.p.w`], p[`${h}.attn.p.b`]); // [B, T, C]
  const ph = transpose(reshape(proj, [B, T, heads, hs]), [0, 2, 1, 3]); // [B, H, T, hs]
  const y = metricAttention(ph, p[`${h}.attn.m`], { causal: true }); // [B, H, T, hs]
  const merged = reshape(transpose(y, [0, 2, 1, 3]), [B, T, C]); // [B, T, C]
  return linearResidual(x, merged, p[`${h}.attn.proj.w`], p[`${h}.attn.proj.b`]);
}

/** One pre-LayerNorm block of layer `l`: x + attn(LN(x)), then + MLP(LN(·)); x [B, T, C]. */
function block(
  c: TransformerConfig,
  p: Record<string, Value>,
  l: number,
  x: Value,
  opts: AttentionOptions | undefined,
): Value {
  const h = `h${l}`;
  const a = rowLayerNorm(x, p[`${h}.ln1.g`], p[`${h}.ln1.b`]); // [B, T, C]
  if (c.attention === "metric") {
    x = metricSelfAttention(p, h, a, c.heads, x); // x + attn(a): [B, T, C]
  } else {
    const attn = {
      qkvW: p[`${h}.attn.qkv.w`],
      qkvB: p[`${h}.attn.qkv.b`],
      projW: p[`${h}.attn.proj.w`],
      projB: p[`${h}.attn.proj.b`],
    };
    x = causalSelfAttention(a, attn, opts!, x); // x + attn(a): [B, T, C]
  }
  const m = rowLayerNorm(x, p[`${h}.ln2.g`], p[`${h}.ln2.b`]); // [B, T, C]
  const hidden = linearGelu(m, p[`${h}.mlp.fc.w`], p[`${h}.mlp.fc.b`]); // [B, T, M]
  return linearResidual(x, hidden, p[`${h}.mlp.proj.w`], p[`${h}.mlp.proj.b`]); // [B, T, C]
}

/** Logits [B, T, V] for token ids [B, T] (int32 or int64). */
export function transformerLogits(
  c: TransformerConfig,
  p: Record<string, Value>,
  ids: Value,
): Value {
  checkTransformerConfig(c);
  const [B, T] = staticShape(ids, "run a transformer");
  const C = c.dModel;
  let x = embedding(p.wte, ids); // [B, T, C]
  if (c.position === "learned") {
    if (T > c.maxLen!) {
      throw new RangeError(
        `Cannot run a transformer with learned positions on ${T} tokens as maxLen is ${c.maxLen}`,
      );
    }
    x = add(x, slice(p.wpe, [0], [T], [0])); // [B, T, C] + [T, C]
  }
  // Metric heads take the causal mask inside their op: no bias constant for them.
  const opts = c.attention === "metric" ? undefined : attentionOptions(c, ids.graph, T);
  for (let l = 0; l < c.layers; l++) x = block(c, p, l, x, opts);
  const f = reshape(rowLayerNorm(x, p["lnf.g"], p["lnf.b"]), [B * T, C]); // [B·T, C]
  const w = c.tiedHead ? transpose(p.wte) : p["head.w"]; // [C, V]
  return reshape(matMul(f, w), [B, T, c.vocab]); // [B, T, V]
}

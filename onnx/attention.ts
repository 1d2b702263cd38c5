/**
 * Causal multi-head self-attention with the position information of "Repeat After Me" (Jelassi
 * et al. 2024, CLAIMS.md §1.2) as either a constant additive bias per head (causal mask, ALiBi,
 * Hard-ALiBi; built from `onnx/attention_bias.ts`) or rotary embeddings on a fraction of each
 * head's dims (GPT-NeoX).
 *
 *   qkv = x·W_qkv + b_qkv                              [B·T, 3C]
 *   q, k, v = split(heads(qkv))                        [B, H, T, hs] each
 *   a = softmax(q·kᵀ/√hs + bias)                       [B, H, T, T]
 *   y = merge(a·v)·W_proj + b_proj                     [B, T, C]
 *
 * With a bias (every scheme but RoPE), the part between the projections is one custom op,
 * `BiasAttention` (`onnx/custom/attention.ts`): its ONNX definition is traced from the same
 * composition (`attentionCore`), so the portable engine computes the same bits as before the op
 * existed, while the native engine runs each head inside the cache (`native/kernels/`). RoPE
 * rotates q and k between the projection and the scores, so it runs `attentionCore` itself.
 *
 * The composition: one fused QKV projection, one transpose to head-major before the split, and
 * MatMuls batched over [B, H] keep nodes and data movement few: in ORT the scale folds into the
 * score MatMul and kᵀ into a transposed MatMul. (A time-major layout whose head views fold into
 * ORT's `FusedMatMul` too measured no faster: the strided MatMuls lose what the transposes save.)
 * @module
 */
import { type DType, type Graph, staticShape, type Value } from "./graph.ts";
import { linear, linearResidual } from "./nn.ts";
import { add, expand, matMul, mul, reshape, split, transpose } from "./ops.ts";
import { attentionCore, biasAttention } from "./custom/attention.ts";

/** The weights of one attention layer; C = model width. */
export interface AttentionParams {
  /** Fused query/key/value projection [C, 3C], columns q | k | v, each head-major. */
  qkvW: Value;
  /** [3C] */
  qkvB: Value;
  /** Output projection [C, C]. */
  projW: Value;
  /** [C] */
  projB: Value;
}

/** Rotary tables for T positions and head size hs (see {@linkcode ropeTables}). */
export interface RopeTables {
  /** cos(t·θ_i) on the rotated dims, 1 on the pass-through dims: [T, hs]. */
  cos: Value;
  /** sin(t·θ_i) on the rotated dims, 0 on the pass-through dims: [T, hs]. */
  sin: Value;
  /** GPT-NeoX's rotate_half as a matrix on the row vector: x·R = [−x₂, x₁, 0…]: [hs, hs]. */
  rotate: Value;
}

/** Options of {@linkcode causalSelfAttention}. */
export interface AttentionOptions {
  heads: number;
  /** Constant additive bias on the scores, [H, T, T] or [1, T, T]; carries the causal mask. */
  bias: Value;
  /** Rotary position embedding applied to q and k (T_rope); none by default. */
  rope?: RopeTables;
}

/**
 * Stacks per-head `[T, T]` biases (from `onnx/attention_bias.ts`) into one constant [H, T, T]
 * of `g`; one bias shared by every head gives [1, T, T].
 */
export function headBias(
  g: Graph,
  perHead: readonly Float32Array[],
  T: number,
  dtype: "float32" | "float64" = "float32",
): Value {
  const data = new Float32Array(perHead.length * T * T);
  perHead.forEach((b, h) => {
    if (b.length !== T * T) {
      throw new TypeError(
        `Cannot stack attention biases as head ${h} is not [${T}, ${T}]: current length is ${b.length}`,
      );
    }
    data.set(b, h * T * T);
  });
  return g.constant(dtype === "float64" ? Float64Array.from(data) : data, [perHead.length, T, T]);
}

/**
 * Rotary embedding tables (Su et al. 2021, GPT-NeoX layout): the first `rotaryDims` dims of a
 * head rotate, θ_i = base^(−2i/rotaryDims), i < rotaryDims/2, pairing dim i with i + rotaryDims/2;
 * the other dims pass through.
 */
export function ropeTables(
  g: Graph,
  T: number,
  headSize: number,
  rotaryDims: number,
  opts: { base?: number; dtype?: "float32" | "float64" } = {},
): RopeTables {
  const base = opts.base ?? 10000;
  const dtype: DType = opts.dtype ?? "float32";
  if (!Number.isInteger(rotaryDims) || rotaryDims < 2 || rotaryDims % 2 || rotaryDims > headSize) {
    throw new RangeError(
      `Cannot build rotary tables as rotaryDims must be even, ≥ 2 and ≤ ${headSize}: current value is ${rotaryDims}`,
    );
  }
  const half = rotaryDims / 2;
  const cos = new Float64Array(T * headSize).fill(1); // [T, hs]
  const sin = new Float64Array(T * headSize); // [T, hs]
  for (let t = 0; t < T; t++) {
    for (let i = 0; i < half; i++) {
      const angle = t * base ** (-2 * i / rotaryDims);
      // emb = cat(freqs, freqs): dims i and i + half share the angle.
      for (const d of [i, i + half]) {
        cos[t * headSize + d] = Math.cos(angle);
        sin[t * headSize + d] = Math.sin(angle);
      }
    }
  }
  // rotate_half(x) = cat(−x[half:rd], x[:half]) as x·R: R[i + half, i] = −1, R[i, i + half] = 1.
  const rotate = new Float64Array(headSize * headSize); // [hs, hs]
  for (let i = 0; i < half; i++) {
    rotate[(i + half) * headSize + i] = -1;
    rotate[i * headSize + i + half] = 1;
  }
  const table = (data: Float64Array, shape: number[]) =>
    g.constant(dtype === "float64" ? data : Float32Array.from(data), shape);
  return {
    cos: table(cos, [T, headSize]),
    sin: table(sin, [T, headSize]),
    rotate: table(rotate, [headSize, headSize]),
  };
}

/** x·cos + rotate_half(x)·sin on x [B, H, T, hs]. */
export function applyRope(x: Value, r: RopeTables): Value {
  return add(mul(x, r.cos), mul(matMul(x, r.rotate), r.sin));
}

/**
 * Causal multi-head self-attention of x [B, T, C] → [B, T, C]; with `residual` [B, T, C] (a
 * block's skip connection), residual + attention, added with the output projection's bias in
 * one op (`linearResidual`).
 */
export function causalSelfAttention(
  x: Value,
  p: AttentionParams,
  opts: AttentionOptions,
  residual?: Value,
): Value {
  const [B, T, C] = staticShape(x, "apply self-attention");
  const H = opts.heads;
  if (!Number.isInteger(H) || H < 1 || C % H !== 0) {
    throw new RangeError(
      `Cannot apply self-attention as heads must divide the width ${C}: current value is ${H}`,
    );
  }
  const hs = C / H;
  const bias = staticShape(opts.bias, "apply self-attention");
  if (bias.length !== 3 || (bias[0] !== H && bias[0] !== 1) || bias[1] !== T || bias[2] !== T) {
    throw new TypeError(
      `Cannot apply self-attention as the bias must be [${H} or 1, ${T}, ${T}]: current shape is [${bias}]`,
    );
  }
  const qkv = linear(x, p.qkvW, p.qkvB); // [B, T, 3C]
  if (!opts.rope) {
    const perHead = bias[0] === H ? opts.bias : expand(opts.bias, [H, T, T]); // [H, T, T]
    return project(biasAttention(qkv, perHead, 1 / Math.sqrt(hs)), p, residual); // [B, T, C]
  }
  const heads = transpose(reshape(qkv, [B, T, 3 * H, hs]), [0, 2, 1, 3]); // [B, 3H, T, hs]
  let [q, k, v] = split(heads, [H, H, H], 1); // [B, H, T, hs]
  if (opts.rope) {
    q = applyRope(q, opts.rope);
    k = applyRope(k, opts.rope);
  }
  const y = attentionCore(q, k, v, opts.bias, 1 / Math.sqrt(hs)); // [B, H, T, hs]
  const merged = reshape(transpose(y, [0, 2, 1, 3]), [B, T, C]); // [B, T, C]
  return project(merged, p, residual); // [B, T, C]
}

/** The output projection of the merged heads y [B, T, C], plus the residual when given. */
function project(y: Value, p: AttentionParams, residual?: Value): Value {
  return residual ? linearResidual(residual, y, p.projW, p.projB) : linear(y, p.projW, p.projB);
}

/**
 * Composed layers: plain functions over the primitive ops, with no gradient rules of their own
 * (autodiff differentiates the primitives they emit).
 * @module
 */
import { staticShape, type Value } from "./graph.ts";
import {
  add,
  div,
  gather,
  logSoftmax,
  matMul,
  mul,
  neg,
  oneHot,
  pad,
  reduceMean,
  reduceSum,
  reshape,
  sqrt,
  sub,
} from "./ops.ts";

/** `x·W + b` over the last axis: x [..., in], W [in, out], b [out]. */
export function linear(x: Value, w: Value, b?: Value): Value {
  const xs = staticShape(x, "apply a linear layer");
  const out = staticShape(w, "apply a linear layer")[1];
  const rows = reshape(x, [-1, xs.at(-1)!]); // [N, in]
  let y = matMul(rows, w); // [N, out]
  if (b) y = add(y, b);
  return reshape(y, [...xs.slice(0, -1), out]);
}

/**
 * The im2col gather index of a "same"-padded 1-D convolution: idx[t][j] = t + j·dilation,
 * positions in the input padded by (kernel−1)/2·dilation on each side. Shape [length, kernel].
 */
export function im2colIndex(length: number, kernel: number, dilation: number): BigInt64Array {
  const idx = new BigInt64Array(length * kernel);
  for (let t = 0; t < length; t++) {
    for (let j = 0; j < kernel; j++) idx[t * kernel + j] = BigInt(t + j * dilation);
  }
  return idx;
}

/** Options of {@linkcode conv1d}. */
export interface Conv1dOptions {
  kernel: number;
  dilation?: number;
}

/**
 * A "same"-length 1-D convolution in channel-last layout, as im2col + MatMul (the fastest form
 * in ORT on CPU; see PLATFORM.md). x [B, L, C_in]; w [kernel·C_in, C_out] with
 * w[j·C_in + i, o] = W_torch[o, i, j]; b [C_out] → [B, L, C_out].
 */
export function conv1d(x: Value, w: Value, b: Value | undefined, opts: Conv1dOptions): Value {
  const [batch, length, cin] = staticShape(x, "convolve");
  const k = opts.kernel;
  const d = opts.dilation ?? 1;
  if (k % 2 !== 1) throw new RangeError(`Cannot pad a kernel of even size to same length: ${k}`);
  const p = ((k - 1) / 2) * d;
  const g = x.graph;
  const xp = pad(x, [0, p, 0, 0, p, 0]); // [B, L + 2p, C_in]
  const idx = g.constant(im2colIndex(length, k, d), [length, k], "int64");
  const cols = gather(xp, idx, { axis: 1 }); // [B, L, k, C_in]
  let y = matMul(reshape(cols, [batch * length, k * cin]), w); // [B·L, C_out]
  if (b) y = add(y, b);
  return reshape(y, [batch, length, staticShape(w, "convolve")[1]]);
}

/** Embedding lookup: table [V, C], ids [...] → [..., C]. */
export function embedding(table: Value, ids: Value): Value {
  return gather(table, ids, { axis: 0 });
}

/** Layer normalisation over the last axis: (x − μ)/√(σ² + ε)·γ + β. */
export function layerNorm(x: Value, gamma: Value, beta: Value, eps = 1e-5): Value {
  const last = x.shape.length - 1;
  const centred = sub(x, reduceMean(x, [last], { keepdims: true }));
  const variance = reduceMean(mul(centred, centred), [last], { keepdims: true });
  return add(mul(div(centred, sqrt(add(variance, eps))), gamma), beta);
}

/**
 * Mean cross-entropy of `logits` [..., V] against integer `targets` [...], weighted by `mask`
 * [...] (1 = counted) when given: Σ mask·(−log p_target) / Σ mask.
 */
export function crossEntropy(logits: Value, targets: Value, mask?: Value): Value {
  const v = staticShape(logits, "compute cross-entropy").at(-1)!;
  const logp = logSoftmax(logits, { axis: -1 });
  const last = logits.shape.length - 1;
  const nll = neg(reduceSum(mul(logp, oneHot(targets, v, logits.dtype)), [last])); // [...]
  if (!mask) return reduceMean(nll);
  return div(reduceSum(mul(nll, mask)), reduceSum(mask));
}

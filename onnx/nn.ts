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
  reduceMean,
  reduceSum,
  reshape,
  sigmoid,
  sqrt,
  sub,
} from "./ops.ts";
import { conv1dIm2col, type Conv1dOptions } from "./custom/conv.ts";
import { biasGelu } from "./custom/gelu.ts";
import { biasResidual } from "./custom/linear.ts";
import { maskedCrossEntropy } from "./custom/loss.ts";

/**
 * `x·W + b` over the last axis: x [..., in], W [in, out], b [out].
 *
 * The bias is added after the product is reshaped back to x's leading dims. For x of rank ≥ 3
 * that keeps ONNX Runtime from fusing MatMul and Add into a Gemm, whose bias copy runs on one
 * thread: for [32, 96, 64] by [64, 256], 0.68 ms as Gemm against 0.40 + 0.18 ms apart on 2
 * threads. The bits are the same: Gemm adds the bias to the rounded product, as Add does.
 */
export function linear(x: Value, w: Value, b?: Value): Value {
  const y = product(x, w);
  return b ? add(y, b) : y;
}

/** x·W over the last axis as a [N, in]·[in, out] MatMul, reshaped back to [..., out]. */
function product(x: Value, w: Value): Value {
  const xs = staticShape(x, "apply a linear layer");
  const out = staticShape(w, "apply a linear layer")[1];
  const rows = reshape(x, [-1, xs.at(-1)!]); // [N, in]
  return reshape(matMul(rows, w), [...xs.slice(0, -1), out]); // [..., out]
}

/**
 * `residual + x·W + b` over the last axis (a residual connection around a linear layer): x
 * [..., in], W [in, out], b [out], residual [..., out]. The two adds are one `BiasResidual` op:
 * the same bits as `add(residual, linear(x, w, b))`, in one pass on the native engine.
 */
export function linearResidual(residual: Value, x: Value, w: Value, b: Value): Value {
  return biasResidual(residual, product(x, w), b);
}

/**
 * `GELU(x·W + b)` (exact GELU) over the last axis: x [..., in], W [in, out], b [out]. The bias
 * and the GELU are one `BiasGelu` op, which also keeps GELU' for the gradient: the same bits as
 * `gelu(linear(x, w, b))` on the portable engine, one pass each way on the native one.
 */
export function linearGelu(x: Value, w: Value, b: Value): Value {
  return biasGelu(product(x, w), b);
}

/**
 * A "same"-length 1-D convolution in channel-last layout: x [B, L, C_in]; w [kernel·C_in, C_out]
 * with w[j·C_in + i, o] = W_torch[o, i, j]; b [C_out] → [B, L, C_out]. One `Conv1dIm2col` op
 * (im2col + MatMul, the fastest form in ORT on CPU; see PLATFORM.md).
 */
export function conv1d(x: Value, w: Value, b: Value, opts: Conv1dOptions): Value {
  return conv1dIm2col(x, w, b, opts)[0];
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
 *
 * With a mask it is one op, `MaskedCrossEntropy`, whose ONNX definition is the composition this
 * function emitted before (the same bits on the portable engine) and whose native kernel does a
 * row in one pass: the transformer step spent ~0.7 ms of its ~20 in the composition's 20 nodes
 * and their gradients.
 */
export function crossEntropy(logits: Value, targets: Value, mask?: Value): Value {
  if (mask) return maskedCrossEntropy(logits, targets, mask);
  const v = staticShape(logits, "compute cross-entropy").at(-1)!;
  const logp = logSoftmax(logits, { axis: -1 });
  const last = logits.shape.length - 1;
  const nll = neg(reduceSum(mul(logp, oneHot(targets, v, logits.dtype)), [last])); // [...]
  return reduceMean(nll);
}

/** SiLU (swish): x·σ(x). */
export function silu(x: Value): Value {
  return mul(x, sigmoid(x));
}

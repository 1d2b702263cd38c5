/**
 * The attention family: `BiasAttention` and `BiasAttentionGrad`, multi-head attention from a
 * layer's packed projections with an additive bias on the scores (the causal mask and any
 * position bias, `onnx/attention_bias.ts`). Native kernels: `native/kernels/attention.cc`, which
 * run each head inside the cache, skip masked keys, read and write the packed layout directly,
 * and recompute the weights in the backward pass instead of keeping [B, H, T, T] of them alive.
 * @module
 */
import { staticShape, type Value } from "../graph.ts";
import {
  add,
  concat,
  matMul,
  mul,
  type Operand,
  reduceSum,
  reshapeTo,
  shapeOf,
  softmax,
  split,
  sub,
  transpose,
} from "../ops.ts";
import { alibiBias, hardAlibiBias } from "../attention_bias.ts";
import {
  type CustomOp,
  emitCustomOp,
  nodeInputs,
  secondOrder,
  traceFunction,
  traceInputs,
} from "./kit.ts";

const HEAD_MAJOR = [0, 2, 1, 3];
const SWAP_LAST_2 = [0, 1, 3, 2];

/** The weights P = softmax(scale·q·kᵀ + bias) [B, H, T, T] of q, k [B, H, T, hs], and scale·q, kᵀ. */
function attentionWeights(
  q: Value,
  k: Value,
  bias: Value,
  scale: Operand,
): { qs: Value; kt: Value; p: Value } {
  const qs = mul(q, scale);
  const kt = transpose(k, SWAP_LAST_2); // [B, H, hs, T]
  const p = softmax(add(matMul(qs, kt), bias), { axis: -1 }); // [B, H, T, T]
  return { qs, kt, p };
}

/**
 * softmax(scale·q·kᵀ + bias)·v for q, k, v [B, H, T, hs] and bias [H or 1, T, T] → [B, H, T, hs]:
 * the core of {@linkcode BIAS_ATTENTION}'s definition, and what rotary attention (whose q and k
 * are rotated between the projections and the scores) runs as it is.
 */
export function attentionCore(q: Value, k: Value, v: Value, bias: Value, scale: Operand): Value {
  return matMul(attentionWeights(q, k, bias, scale).p, v);
}

/**
 * From QKV [B, T, 3C] (q | k | v, each head-major) and Bias [H, T, T]: q, k, v [B, H, T, hs],
 * and the run-time shapes that merge heads back, [B, T, −1], and split a [B, T, C] by head,
 * [B, T, H, −1].
 */
function heads(
  qkv: Value,
  bias: Value,
): { q: Value; k: Value; v: Value; merged: Value; split: Value } {
  const g = qkv.graph;
  const bt = shapeOf(qkv, { end: 2 }); // [2]: B, T
  const h = shapeOf(bias, { end: 1 }); // [1]: H
  const rest = g.ints([-1]);
  const x4 = reshapeTo(qkv, concat([bt, mul(h, 3), rest], 0), ["B", "T", "3H", "hs"]);
  const [q, k, v] = split(transpose(x4, HEAD_MAJOR), { parts: 3, dim: "H" }, 1); // [B, H, T, hs]
  return { q, k, v, merged: concat([bt, rest], 0), split: concat([bt, h, rest], 0) };
}

/** Checks qkv [B, T, 3·H·hs], bias [H, T, T] and dy [B, T, H·hs]; returns the output's shape. */
function checkAttentionShapes(action: string, qkv: Value, bias: Value, dy?: Value): number[] {
  const xs = staticShape(qkv, action);
  const bs = staticShape(bias, action);
  if (bs.length !== 3 || bs[1] !== bs[2]) {
    throw new TypeError(`Cannot ${action} as the bias must be [H, T, T]: current shape is [${bs}]`);
  }
  const [H, T] = bs;
  if (xs.length !== 3 || xs[1] !== T || xs[2] % (3 * H) !== 0) {
    throw new TypeError(
      `Cannot ${action} as QKV must be [B, ${T}, 3·${H}·hs] for a bias of [${bs}]: ` +
        `current shape is [${xs}]`,
    );
  }
  const ys = [xs[0], T, xs[2] / 3];
  if (dy && staticShape(dy, action).join() !== ys.join()) {
    throw new TypeError(`Cannot ${action} as dY must be [${ys}]: current shape is [${dy.shape}]`);
  }
  return ys;
}

/** Head 0: a Hard-ALiBi window of 2; head 1: ALiBi with slope 0.5 (both carry the causal mask). */
function sampleBias(T: number): number[] {
  return [...hardAlibiBias(T, 2), ...alibiBias(T, 0.5)];
}

/**
 * `BiasAttention(QKV, Bias, Scale) → Y`: per head, y = softmax(Scale·q·kᵀ + Bias[h])·v, heads
 * side by side; QKV [B, T, 3C], Bias [H, T, T], Scale a scalar, Y [B, T, C].
 */
export const BIAS_ATTENTION: CustomOp<"BiasAttention"> = {
  name: "BiasAttention",
  inputs: ["QKV", "Bias", "Scale"],
  outputs: ["Y"],
  gradient: (args) => {
    const [qkv, bias, scale] = nodeInputs(args);
    if (args.needs[1] || args.needs[2]) {
      throw new TypeError("Cannot differentiate BiasAttention's bias or scale: they are constants");
    }
    return [biasAttentionGrad(args.dy, qkv, bias, scale), null, null];
  },
  gradCheck: [{
    dtype: "float64",
    inputs: [{ shape: [2, 5, 3 * 2 * 3] }],
    build: ([qkv]) =>
      biasAttention(qkv, qkv.graph.constant(sampleBias(5), [2, 5, 5], "float64"), 0.7),
  }],
  kernel: {
    inputs: [{ shape: [3, 9, 3 * 2 * 4] }, { shape: [2, 9, 9], data: sampleBias(9) }],
    build: ([qkv, bias]) => [biasAttention(mul(qkv, 2), bias, 0.5)],
    agreement: 1e-5,
  },
};

/** Multi-head attention of qkv [B, T, 3C] with bias [H, T, T] on the scores → [B, T, C]. */
export function biasAttention(qkv: Value, bias: Value, scale: number): Value {
  const shape = checkAttentionShapes("apply BiasAttention", qkv, bias);
  const inputs = [qkv, bias, qkv.graph.scalar(scale, qkv.dtype)];
  const definition = traceFunction(
    BIAS_ATTENTION.name,
    traceInputs(BIAS_ATTENTION, inputs, [["B", "T", "3C"], ["H", "T", "T"], []]),
    BIAS_ATTENTION.outputs,
    ([QKV, Bias, Scale]) => {
      const { q, k, v, merged } = heads(QKV, Bias);
      const y = transpose(attentionCore(q, k, v, Bias, Scale), HEAD_MAJOR); // [B, T, H, hs]
      return [reshapeTo(y, merged, ["B", "T", "C"])];
    },
  );
  return emitCustomOp(BIAS_ATTENTION, definition, inputs, [{ dtype: qkv.dtype, shape }])[0];
}

/**
 * `BiasAttentionGrad(dY, QKV, Bias, Scale) → dQKV`: the gradient of {@linkcode BIAS_ATTENTION}
 * with respect to QKV (Bias and Scale are constants). It recomputes the weights P (the forward
 * pass's bits), then per head dV = Pᵀ·dY, dS = P ⊙ (dP − Σ_keys dP ⊙ P) with dP = dY·Vᵀ,
 * dQ = (dS·K)·Scale, dK = ((Scale·Q)ᵀ·dS)ᵀ, packed as QKV is: what reverse mode derives from the
 * forward composition.
 */
export const BIAS_ATTENTION_GRAD: CustomOp<"BiasAttentionGrad"> = {
  name: "BiasAttentionGrad",
  inputs: ["dY", "QKV", "Bias", "Scale"],
  outputs: ["dQKV"],
  gradient: secondOrder("BiasAttentionGrad"),
  // Checked as BiasAttention's rule, which emits it.
  gradCheck: "not differentiable",
  kernel: {
    inputs: [
      { shape: [3, 9, 2 * 4] },
      { shape: [3, 9, 3 * 2 * 4] },
      { shape: [2, 9, 9], data: sampleBias(9) },
    ],
    build: ([dy, qkv, bias]) => [biasAttentionGrad(dy, mul(qkv, 2), bias, qkv.graph.scalar(0.5))],
    agreement: 1e-5,
  },
};

/** dqkv [B, T, 3C] of {@linkcode biasAttention} from dy [B, T, C] and the forward node's inputs. */
export function biasAttentionGrad(dy: Value, qkv: Value, bias: Value, scale: Value): Value {
  checkAttentionShapes("differentiate BiasAttention", qkv, bias, dy);
  const definition = traceFunction(
    BIAS_ATTENTION_GRAD.name,
    traceInputs(BIAS_ATTENTION_GRAD, [dy, qkv, bias, scale], [
      ["B", "T", "C"],
      ["B", "T", "3C"],
      ["H", "T", "T"],
      [],
    ]),
    BIAS_ATTENTION_GRAD.outputs,
    ([dY, QKV, Bias, Scale]) => {
      const { q, k, v, merged, split } = heads(QKV, Bias);
      const { qs, kt, p } = attentionWeights(q, k, Bias, Scale);
      const dYh = transpose(reshapeTo(dY, split, ["B", "T", "H", "hs"]), HEAD_MAJOR);
      const dP = matMul(dYh, transpose(v, SWAP_LAST_2)); // [B, H, T, T]
      const dV = matMul(transpose(p, SWAP_LAST_2), dYh); // [B, H, T, hs]
      const dS = mul(p, sub(dP, reduceSum(mul(dP, p), [-1], { keepdims: true })));
      const dQ = mul(matMul(dS, transpose(kt, SWAP_LAST_2)), Scale);
      const dK = transpose(matMul(transpose(qs, SWAP_LAST_2), dS), SWAP_LAST_2);
      const dX = transpose(concat([dQ, dK, dV], 1), HEAD_MAJOR); // [B, T, 3H, hs]
      return [reshapeTo(dX, merged, ["B", "T", "3C"])];
    },
  );
  return emitCustomOp(
    BIAS_ATTENTION_GRAD,
    definition,
    [dy, qkv, bias, scale],
    [{ dtype: qkv.dtype, shape: qkv.shape }],
  )[0];
}

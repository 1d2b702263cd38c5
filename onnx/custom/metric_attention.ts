/**
 * The metric-attention family: `MetricAttention` and `MetricAttentionGrad`, the "metric tensor"
 * attention of Digital-Defiance/nlp-metaformer (CLAIMS.md §3.1). One projection p per head and a
 * symmetric metric M per head give the scores r = p M pᵀ, and the values are the same p:
 *
 *   t = softmax(scale · P M Pᵀ + mask) · P,   P [B, H, T, K], M [H, K(K+1)/2] packed.
 *
 * Which of §3.1's variants this is: the README's (symmetric packed M, scale 1/√K, values = the
 * same p) with a causal mask added (the README leaves the mask unspecified; `causal: false`
 * gives the unmasked README form). The others differ as follows, and are not this op:
 * `mtn_shakespeare` builds M = S·Sᵀ from a masked softmax (PSD, not a free symmetric M);
 * `pipelines`' MetricAttention uses (C + Cᵀ)/2 with no scale and separate values;
 * `pipelines`' QuadraticAttention an arbitrary (non-symmetric) C; `quadratic_form.rs` an
 * arbitrary form with no mask, applied transposed.
 *
 * **Packing of M.** Row-major upper triangle, k ≤ k': l = 0, 1, … walks (0,0), (0,1), …,
 * (0,K−1), (1,1), (1,2), …, (K−1,K−1), so l(k, k') = k·K − k(k−1)/2 + (k' − k), and the dense
 * metric is A[k][k'] = A[k'][k] = M[l(min, max)] ({@linkcode packedMetricIndex}).
 *
 * **Options as inputs.** Ops of the kit have a fixed arity and no attributes, so causal and
 * scale travel as inputs, as BiasAttention's do: the mask as an additive `Bias` [T, T]
 * (0 or −1e9; {@linkcode metricAttention} makes it from `causal`, one constant per graph) and
 * the scale as a scalar input. A traced constant would put the scale into the definition, and
 * a graph holds one definition per op, so two layers with different scales could not share the
 * op; an input costs nothing and the native kernel reads it the same way. The bias, rather than
 * a flag, keeps the definition a plain composition (no run-time `Range` to build the mask), and
 * lets the kernels skip masked keys exactly as `native/kernels/attention.cc` does.
 *
 * Native kernels: `native/kernels/metric_attention.cc` (CPU: P·M once per head, then the
 * scores row by row; the gradient recomputes the weights) and
 * `native/cuda/metric_attention.cu` (CUDA). The float64 reference the tests and the CUDA check
 * compare with is `metric_attention_reference.ts`.
 * @module
 */
import { type Dim, type DType, type Graph, staticShape, type Value } from "../graph.ts";
import { add, gather, matMul, mul, reduceSum, reshape, softmax, sub, transpose } from "../ops.ts";
import { causalBias } from "../attention_bias.ts";
import {
  type CustomOp,
  emitCustomOp,
  nodeInputs,
  secondOrder,
  traceFunction,
  traceInputs,
} from "./kit.ts";

const SWAP_LAST_2 = [0, 1, 3, 2];

/**
 * The packed index of every dense entry of a K × K symmetric metric, row-major [K·K]:
 * entry k·K + k' holds l(min(k, k'), max(k, k')) (see the module doc).
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { packedMetricIndex } from "./metric_attention.ts";
 *
 * // K = 3: M = [m00, m01, m02, m11, m12, m22]
 * assertEquals(Array.from(packedMetricIndex(3)), [0, 1, 2, 1, 3, 4, 2, 4, 5]);
 * ```
 */
export function packedMetricIndex(K: number): Int32Array {
  if (!Number.isInteger(K) || K < 1) {
    throw new RangeError(
      `Cannot index a packed metric as K must be an integer ≥ 1: current value is ${K}`,
    );
  }
  const idx = new Int32Array(K * K);
  for (let k = 0; k < K; k++) {
    for (let k2 = 0; k2 < K; k2++) {
      const [a, b] = k <= k2 ? [k, k2] : [k2, k];
      idx[k * K + k2] = a * K - (a * (a - 1)) / 2 + (b - a);
    }
  }
  return idx;
}

/** Checks P [B, H, T, K] and M [H, K(K+1)/2] (and Bias [T, T], dY like P); returns P's shape. */
function checkMetricShapes(
  action: string,
  p: Value,
  m: Value,
  bias?: Value,
  dy?: Value,
): number[] {
  const ps = staticShape(p, action);
  const ms = staticShape(m, action);
  if (ps.length !== 4) {
    throw new TypeError(`Cannot ${action} as P must be [B, H, T, K]: current shape is [${ps}]`);
  }
  const [, H, T, K] = ps;
  const L = (K * (K + 1)) / 2;
  if (ms.length !== 2 || ms[0] !== H || ms[1] !== L) {
    throw new TypeError(
      `Cannot ${action} as M must be [${H}, ${L}] (H, K(K+1)/2) for P [${ps}]: current shape ` +
        `is [${ms}]`,
    );
  }
  if (m.dtype !== p.dtype) {
    throw new TypeError(`Cannot ${action} as M is ${m.dtype} and P ${p.dtype}: one dtype needed`);
  }
  if (bias && staticShape(bias, action).join() !== [T, T].join()) {
    throw new TypeError(
      `Cannot ${action} as Bias must be [${T}, ${T}]: current shape is [${bias.shape}]`,
    );
  }
  if (dy && staticShape(dy, action).join() !== ps.join()) {
    throw new TypeError(`Cannot ${action} as dY must be [${ps}]: current shape is [${dy.shape}]`);
  }
  return ps;
}

/** The definitions' trace shapes: B, H, T symbolic; K fixed, as the unpacking index needs it. */
function traceShapes(K: number): Dim[][] {
  return [["B", "H", "T", K], ["H", (K * (K + 1)) / 2], ["T", "T"], []];
}

/** The dense metrics A [H, K, K] of packed M [H, K(K+1)/2]: a Gather by a constant index. */
function unpackMetric(M: Value, K: number): Value {
  const idx = M.graph.constant(Array.from(packedMetricIndex(K)), [K, K], "int64");
  return gather(M, idx, { axis: 1 }); // [H, K, K]
}

/** What both definitions compute first: A, Qs = (P·A)·Scale and the weights W [B, H, T, T]. */
function metricWeights(P: Value, M: Value, Bias: Value, Scale: Value, K: number) {
  const a = unpackMetric(M, K);
  const qs = mul(matMul(P, a), Scale); // [B, H, T, K]
  const w = softmax(add(matMul(qs, transpose(P, SWAP_LAST_2)), Bias), { axis: -1 }); // [B, H, T, T]
  return { a, qs, w };
}

/** A metric-attention case for the checks: P [B, H, T, K] and M [H, K(K+1)/2]. */
function sample(B: number, H: number, T: number, K: number) {
  return [{ shape: [B, H, T, K] }, { shape: [H, (K * (K + 1)) / 2] }];
}

/**
 * `MetricAttention(P, M, Bias, Scale) → Y`: per batch row and head, Y = softmax(Scale·P·A·Pᵀ +
 * Bias)·P with A the dense symmetric metric of packed M[h]. P [B, H, T, K], M [H, K(K+1)/2],
 * Bias [T, T] (0 or −1e9: the causal mask, or zeros), Scale a scalar; Y [B, H, T, K].
 */
export const METRIC_ATTENTION: CustomOp<"MetricAttention"> = {
  name: "MetricAttention",
  inputs: ["P", "M", "Bias", "Scale"],
  outputs: ["Y"],
  gradient: (args) => {
    const [p, m, bias, scale] = nodeInputs(args);
    if (args.needs[2] || args.needs[3]) {
      throw new TypeError(
        "Cannot differentiate MetricAttention's bias or scale: they are constants",
      );
    }
    const [dp, dm] = metricAttentionGrad(args.dy, p, m, bias, scale);
    return [args.needs[0] ? dp : null, args.needs[1] ? dm : null, null, null];
  },
  gradCheck: [
    { // causal, odd K
      dtype: "float64",
      inputs: sample(2, 2, 5, 3),
      build: ([p, m]) => metricAttention(p, m, { scale: 0.7 }),
    },
    { // unmasked, the default scale, one position
      dtype: "float64",
      inputs: sample(2, 1, 1, 2),
      build: ([p, m]) => metricAttention(p, m, { causal: false }),
    },
    { // unmasked, even K
      dtype: "float64",
      inputs: sample(1, 2, 4, 4),
      build: ([p, m]) => metricAttention(p, m, { causal: false, scale: 1.3 }),
    },
  ],
  kernel: {
    inputs: sample(3, 2, 9, 5),
    build: ([p, m]) => [metricAttention(mul(p, 2), m, { scale: 0.5 })],
    agreement: 1e-5,
  },
};

/** Options of {@linkcode metricAttention}. */
export interface MetricAttentionOptions {
  /** Mask keys after the query (default true). */
  readonly causal?: boolean;
  /** The scores' scale (default 1/√K). */
  readonly scale?: number;
}

/** One bias constant per (graph, T, causal, dtype): the layers of a model share it. */
const BIASES = new WeakMap<Graph, Map<string, Value>>();

/** The additive mask [T, T] of `causal` in `dtype`, as a constant of graph `g`. */
function maskBias(g: Graph, T: number, causal: boolean, dtype: DType): Value {
  const key = `${T}:${causal}:${dtype}`;
  let perGraph = BIASES.get(g);
  if (!perGraph) BIASES.set(g, perGraph = new Map());
  let bias = perGraph.get(key);
  if (!bias) {
    const data = causal ? causalBias(T) : new Float32Array(T * T);
    bias = g.constant(dtype === "float64" ? Float64Array.from(data) : data, [T, T], dtype);
    perGraph.set(key, bias);
  }
  return bias;
}

/**
 * Metric attention of per-head projections p [B, H, T, K] with packed symmetric metrics
 * m [H, K(K+1)/2] (row-major upper triangle, {@linkcode packedMetricIndex}):
 * softmax(scale·p·M·pᵀ + mask)·p → [B, H, T, K]; causal by default, scale 1/√K by default.
 * B, H and T may differ between the calls in one graph, K may not: the definition's unpacking
 * index is traced with K, and a graph holds one definition per op.
 */
export function metricAttention(
  p: Value,
  m: Value,
  opts: MetricAttentionOptions = {},
): Value {
  const shape = checkMetricShapes("apply MetricAttention", p, m);
  const [, , T, K] = shape;
  const scale = opts.scale ?? 1 / Math.sqrt(K);
  if (!Number.isFinite(scale)) {
    throw new RangeError(
      `Cannot apply MetricAttention as scale must be finite: current value is ${scale}`,
    );
  }
  const g = p.graph;
  const inputs = [p, m, maskBias(g, T, opts.causal ?? true, p.dtype), g.scalar(scale, p.dtype)];
  const definition = traceFunction(
    METRIC_ATTENTION.name,
    traceInputs(METRIC_ATTENTION, inputs, traceShapes(K)),
    METRIC_ATTENTION.outputs,
    ([P, M, Bias, Scale]) => [matMul(metricWeights(P, M, Bias, Scale, K).w, P)],
  );
  return emitCustomOp(METRIC_ATTENTION, definition, inputs, [{ dtype: p.dtype, shape }])[0];
}

/**
 * `MetricAttentionGrad(dY, P, M, Bias, Scale) → (dP, dM)`: the gradient of
 * {@linkcode METRIC_ATTENTION} (Bias and Scale are constants). It recomputes the weights W,
 * then per batch row and head, with Qs = Scale·P·A:
 * dW = dY·Pᵀ, dS = W ⊙ (dW − Σ_keys dW ⊙ W), dQ = Scale·dS·P,
 * dP = Wᵀ·dY (values) + dSᵀ·Qs (keys) + dQ·A (queries), and the dense G = Σ_batch Pᵀ·dQ
 * [H, K, K] = ∂L/∂A. M's entries are tied pairs of A's, so its gradient stays packed:
 * dM[l(k, k')] = G[k][k'] + G[k'][k] off the diagonal (both halves), G[k][k] on it.
 */
export const METRIC_ATTENTION_GRAD: CustomOp<"MetricAttentionGrad"> = {
  name: "MetricAttentionGrad",
  inputs: ["dY", "P", "M", "Bias", "Scale"],
  outputs: ["dP", "dM"],
  gradient: secondOrder("MetricAttentionGrad"),
  // Checked as MetricAttention's rule, which emits it.
  gradCheck: "not differentiable",
  kernel: {
    inputs: [{ shape: [3, 2, 9, 5] }, ...sample(3, 2, 9, 5)], // dY, P, M
    build: ([dy, p, m]) => {
      const g = p.graph;
      return metricAttentionGrad(dy, mul(p, 2), m, maskBias(g, 9, true, "float32"), g.scalar(0.5));
    },
    agreement: 1e-5,
  },
};

/**
 * dp [B, H, T, K] and dm [H, K(K+1)/2] of {@linkcode metricAttention} from dy [B, H, T, K] and the
 * forward node's inputs.
 */
export function metricAttentionGrad(
  dy: Value,
  p: Value,
  m: Value,
  bias: Value,
  scale: Value,
): [Value, Value] {
  const shape = checkMetricShapes("differentiate MetricAttention", p, m, bias, dy);
  const K = shape[3];
  const L = (K * (K + 1)) / 2;
  const inputs = [dy, p, m, bias, scale];
  const definition = traceFunction(
    METRIC_ATTENTION_GRAD.name,
    traceInputs(METRIC_ATTENTION_GRAD, inputs, [["B", "H", "T", K], ...traceShapes(K)]),
    METRIC_ATTENTION_GRAD.outputs,
    ([dY, P, M, Bias, Scale]) => {
      const { a, qs, w } = metricWeights(P, M, Bias, Scale, K);
      const dW = matMul(dY, transpose(P, SWAP_LAST_2)); // [B, H, T, T]
      const dS = mul(w, sub(dW, reduceSum(mul(dW, w), [-1], { keepdims: true })));
      const dQ = mul(matMul(dS, P), Scale); // [B, H, T, K]
      const dP = add(
        add(matMul(transpose(w, SWAP_LAST_2), dY), matMul(transpose(dS, SWAP_LAST_2), qs)),
        matMul(dQ, a),
      );
      const G = reduceSum(matMul(transpose(P, SWAP_LAST_2), dQ), [0]); // [H, K, K]
      // Both halves of each pair: G + Gᵀ, whose diagonal 2·G[k][k] is halved back (exactly).
      const both = reshape(add(G, transpose(G, [0, 2, 1])), ["H", K * K]);
      const index = packedMetricIndex(K);
      const upper = Array.from({ length: L }, () => 0);
      const half = Array.from({ length: L }, () => 1);
      for (let k = 0; k < K; k++) {
        for (let k2 = k; k2 < K; k2++) {
          upper[index[k * K + k2]] = k * K + k2;
          if (k === k2) half[index[k * K + k2]] = 0.5;
        }
      }
      const dM = mul(
        gather(both, P.graph.constant(upper, [L], "int64"), { axis: 1 }),
        P.graph.constant(half, [L], P.dtype),
      );
      return [dP, dM];
    },
  );
  const [dp, dm] = emitCustomOp(METRIC_ATTENTION_GRAD, definition, inputs, [
    { dtype: p.dtype, shape: p.shape },
    { dtype: m.dtype, shape: m.shape },
  ]);
  return [dp, dm];
}

/**
 * The optimiser family: `AdamW` (one step on flat vectors) and `SumOfSquares` (the clipping
 * norm's Σ g²). Native kernels: `native/kernels/optim.cc`.
 * @module
 */
import { staticShape, type Value } from "../graph.ts";
import { add, div, mul, reduceSum, split, sqrt, sub } from "../ops.ts";
import { type CustomOp, emitCustomOp, nodeInputs, traceFunction, traceInputs } from "./kit.ts";

/** The scalar inputs of {@linkcode adamW}, each a rank-0 value of the vectors' dtype. */
export interface AdamWScalars {
  /** The gradient's clipping factor (1: no clipping). */
  clipScale: Value;
  /** lr·λ, the decay of a decayed parameter before the step's factor 1 − Mask·LrWd. */
  lrWd: Value;
  /** lr/(1 − β1^t). */
  stepSize: Value;
  /** √(1 − β2^t). */
  bc2Sqrt: Value;
  beta1: Value;
  oneMinusBeta1: Value;
  beta2: Value;
  oneMinusBeta2: Value;
  eps: Value;
}

const ADAMW_SCALARS = [
  "ClipScale",
  "LrWd",
  "StepSize",
  "Bc2Sqrt",
  "Beta1",
  "OneMinusBeta1",
  "Beta2",
  "OneMinusBeta2",
  "Eps",
] as const;

/**
 * `AdamW(P, M, V, G, Mask, ClipScale, LrWd, StepSize, Bc2Sqrt, Beta1, OneMinusBeta1, Beta2,
 * OneMinusBeta2, Eps) → (P1, M1, V1)`: one AdamW step on flat vectors [N] (the train step's
 * layout, `onnx/optim.ts`), the other inputs scalars: g = G·ClipScale, M1 = M·β1 + g·(1 − β1),
 * V1 = V·β2 + g²·(1 − β2), P1 = P·(1 − Mask·LrWd) − M1/(√V1/Bc2Sqrt + ε)·StepSize, Mask the 0/1
 * decay mask [N]. Every step is one correctly rounded IEEE operation, so the native kernel,
 * which does them in this order in one pass, gives the same bits.
 */
export const ADAMW: CustomOp<"AdamW"> = {
  name: "AdamW",
  inputs: ["P", "M", "V", "G", "Mask", ...ADAMW_SCALARS],
  outputs: ["P1", "M1", "V1"],
  gradient: () => {
    throw new TypeError("Cannot differentiate AdamW: an optimiser step, not part of a loss");
  },
  gradCheck: "not differentiable",
  kernel: {
    inputs: [
      { shape: [37] },
      { shape: [37] },
      { shape: [37], data: Array.from({ length: 37 }, (_, i) => (i % 7) * 1e-4) },
      { shape: [37] },
      { shape: [37], data: Array.from({ length: 37 }, (_, i) => i % 3 === 0 ? 0 : 1) },
      ...[0.37, 3e-5, 3e-4 / (1 - 0.9 ** 7), Math.sqrt(1 - 0.999 ** 7), 0.9, 0.1, 0.999, 1e-3, 1e-8]
        .map((v) => ({ shape: [], data: [v] })),
    ],
    build: ([p, m, v, g, mask, ...s]) =>
      adamW(p, m, v, g, mask, {
        clipScale: s[0],
        lrWd: s[1],
        stepSize: s[2],
        bc2Sqrt: s[3],
        beta1: s[4],
        oneMinusBeta1: s[5],
        beta2: s[6],
        oneMinusBeta2: s[7],
        eps: s[8],
      }),
    agreement: "bits",
  },
};

/** One AdamW step on flat vectors p, m, v, grad and the 0/1 decay mask, all [N] → [p1, m1, v1]. */
export function adamW(
  p: Value,
  m: Value,
  v: Value,
  grad: Value,
  mask: Value,
  s: AdamWScalars,
): [Value, Value, Value] {
  const n = staticShape(p, "apply AdamW");
  const vectors = [p, m, v, grad, mask];
  const scalars = [
    s.clipScale,
    s.lrWd,
    s.stepSize,
    s.bc2Sqrt,
    s.beta1,
    s.oneMinusBeta1,
    s.beta2,
    s.oneMinusBeta2,
    s.eps,
  ];
  const ok = n.length === 1 &&
    vectors.every((x) => x.dtype === p.dtype && x.shape.length === 1 && x.shape[0] === n[0]) &&
    scalars.every((x) => x.dtype === p.dtype && x.shape.length === 0);
  if (!ok) {
    throw new TypeError(
      `Cannot apply AdamW: p, m, v, grad and mask must be [N] and the rest scalars, all of ` +
        `p's dtype ${p.dtype}: current shapes ${
          [...vectors, ...scalars].map((x) => `[${x.shape}] ${x.dtype}`).join(", ")
        }`,
    );
  }
  const definition = traceFunction(
    ADAMW.name,
    traceInputs(ADAMW, [...vectors, ...scalars], [
      ...vectors.map(() => ["N"]),
      ...scalars.map(() => []),
    ]),
    ADAMW.outputs,
    ([P, M, V, G, Mask, clip, lrWd, stepSize, bc2Sqrt, b1, omb1, b2, omb2, eps]) => {
      const gc = mul(G, clip);
      const m1 = add(mul(M, b1), mul(gc, omb1));
      const v1 = add(mul(V, b2), mul(mul(gc, gc), omb2));
      const decayed = mul(P, sub(1, mul(Mask, lrWd)));
      const update = div(m1, add(div(sqrt(v1), bc2Sqrt), eps));
      return [sub(decayed, mul(update, stepSize)), m1, v1];
    },
  );
  const out = { dtype: p.dtype, shape: p.shape };
  const [p1, m1, v1] = emitCustomOp(ADAMW, definition, [...vectors, ...scalars], [out, out, out]);
  return [p1, m1, v1];
}

/**
 * `SumOfSquares(G) → S`: Σ g² over a flat vector G [N] that holds several tensors one after
 * another (`sizes` elements each, e.g. a train step's gradients), as the sum over the tensors, in
 * order, of each one's ReduceSum of its squares (a tensor's ReduceSum over all its axes equals
 * that of its flat copy here). The definition depends on `sizes`, so each graph carries its
 * own; the native kernel sums G in one pass.
 */
export const SUM_OF_SQUARES: CustomOp<"SumOfSquares"> = {
  name: "SumOfSquares",
  inputs: ["G"],
  outputs: ["S"],
  // d Σ g² = 2g·dS
  gradient: (args) => [mul(nodeInputs(args)[0], mul(args.dy, 2))],
  gradCheck: [{
    dtype: "float64",
    inputs: [{ shape: [7] }],
    build: ([g]) => sumOfSquares(g, [2, 4, 1]),
  }],
  kernel: {
    inputs: [{ shape: [1037] }],
    build: ([g]) => [sumOfSquares(g, [1000, 37])],
    agreement: 1e-6,
  },
};

/** Σ g² of a flat vector g [N] made of tensors of `sizes` elements one after another → scalar. */
export function sumOfSquares(g: Value, sizes: readonly number[]): Value {
  if (sizes.length === 0 || sizes.some((n) => !Number.isInteger(n) || n < 1)) {
    throw new RangeError(
      `Cannot define SumOfSquares as sizes must be positive integers: current value is [${sizes}]`,
    );
  }
  const n = staticShape(g, "apply SumOfSquares");
  const total = sizes.reduce((a, b) => a + b, 0);
  if (n.length !== 1 || n[0] !== total) {
    throw new TypeError(
      `Cannot apply SumOfSquares as g must be a vector of ${total} elements (the sizes' sum): ` +
        `current shape is [${n}]`,
    );
  }
  const definition = traceFunction(
    SUM_OF_SQUARES.name,
    traceInputs(SUM_OF_SQUARES, [g], [n]),
    SUM_OF_SQUARES.outputs,
    ([G]) => {
      const parts = sizes.length > 1 ? split(G, sizes, 0) : [G];
      const sums = parts.map((p) => reduceSum(mul(p, p), [0]));
      return [sums.reduce((a, b) => add(a, b))];
    },
  );
  return emitCustomOp(SUM_OF_SQUARES, definition, [g], [{ dtype: g.dtype, shape: [] }])[0];
}

/**
 * The linear-layer family: `ColumnSums` (a bias's gradient), `MatMulTransA` (a weight's
 * gradient) and `BiasResidual` (a projection's bias and the skip connection around it). Native
 * kernels: `native/kernels/linear.cc`.
 * @module
 */
import { staticShape, type Value } from "../graph.ts";
import { add, expand, matMul, mul, reduceSum, transpose } from "../ops.ts";
import {
  type CustomOp,
  emitCustomOp,
  nodeInputs,
  symbolicDims,
  traceFunction,
  traceInputs,
} from "./kit.ts";

/**
 * `ColumnSums(X [R, C]) → Y [1, C]`: the sum of each column, ReduceSum over the rows with the
 * axis kept; the gradient of a bias broadcast over rows. ONNX Runtime's ReduceSum adds the rows
 * in order in float32, and so does the native kernel, spreading the columns over the pool.
 */
export const COLUMN_SUMS: CustomOp<"ColumnSums"> = {
  name: "ColumnSums",
  inputs: ["X"],
  outputs: ["Y"],
  gradient: (args) => {
    const [x] = nodeInputs(args);
    return [expand(args.dy, staticShape(x, "differentiate ColumnSums"))];
  },
  // Weighted, so that each column's gradient differs.
  gradCheck: [{
    dtype: "float64",
    inputs: [{ shape: [4, 3] }],
    build: ([x]) => mul(columnSums(x), x.graph.constant([1, -2, 3], [1, 3], "float64")),
  }],
  kernel: { inputs: [{ shape: [300, 37] }], build: ([x]) => [columnSums(x)], agreement: "bits" },
};

/** x [R, C] → [1, C], each column's sum. */
export function columnSums(x: Value): Value {
  if (x.shape.length !== 2) {
    throw new TypeError(`Cannot apply ColumnSums to [${x.shape}]: x must have rank 2`);
  }
  const definition = traceFunction(
    COLUMN_SUMS.name,
    traceInputs(COLUMN_SUMS, [x], [["R", "C"]]),
    COLUMN_SUMS.outputs,
    ([X]) => [reduceSum(X, [0], { keepdims: true })],
  );
  return emitCustomOp(COLUMN_SUMS, definition, [x], [{
    dtype: x.dtype,
    shape: [1, x.shape[1]],
  }])[0];
}

/**
 * `MatMulTransA(A [K, M], B [K, N]) → Y = Aᵀ·B [M, N]`: the weight gradient of a linear layer.
 * Defined as Transpose + MatMul, which ONNX Runtime fuses into one FusedMatMul; the native
 * kernel reads Aᵀ in place, without ORT's transposed copy, with its own rounding (one fused
 * multiply-add per term, summed over k in order).
 */
export const MATMUL_TRANS_A: CustomOp<"MatMulTransA"> = {
  name: "MatMulTransA",
  inputs: ["A", "B"],
  outputs: ["Y"],
  // Y = Aᵀ·B: dA = B·dYᵀ, dB = A·dY.
  gradient: (args) => {
    const [a, b] = nodeInputs(args);
    const { dy, needs } = args;
    return [
      needs[0] ? matMul(b, transpose(dy, [1, 0])) : null,
      needs[1] ? matMul(a, dy) : null,
    ];
  },
  gradCheck: [{
    dtype: "float64",
    inputs: [{ shape: [5, 3] }, { shape: [5, 4] }],
    build: ([a, b]) => matMulTransA(a, b),
  }],
  kernel: {
    inputs: [{ shape: [300, 37] }, { shape: [300, 20] }],
    build: ([a, b]) => [matMulTransA(a, b)],
    agreement: 1e-5,
  },
};

/** a [K, M], b [K, N] → aᵀ·b [M, N]. */
export function matMulTransA(a: Value, b: Value): Value {
  const as = staticShape(a, "apply MatMulTransA");
  const bs = staticShape(b, "apply MatMulTransA");
  if (as.length !== 2 || bs.length !== 2 || as[0] !== bs[0] || a.dtype !== b.dtype) {
    throw new TypeError(
      "Cannot apply MatMulTransA as a [K, M] and b [K, N] must be matrices of one dtype with " +
        `as many rows: current a [${as}] ${a.dtype}, b [${bs}] ${b.dtype}`,
    );
  }
  const definition = traceFunction(
    MATMUL_TRANS_A.name,
    traceInputs(MATMUL_TRANS_A, [a, b], [["K", "M"], ["K", "N"]]),
    MATMUL_TRANS_A.outputs,
    ([A, B]) => [matMul(transpose(A, [1, 0]), B)],
  );
  return emitCustomOp(MATMUL_TRANS_A, definition, [a, b], [{
    dtype: a.dtype,
    shape: [as[1], bs[1]],
  }])[0];
}

/**
 * `BiasResidual(X, Y, B) → X + (Y + B)`: a residual connection around a linear layer, with the
 * layer's bias B [C] added to its product Y [..., C] first; X [..., C]. The native kernel does
 * both adds in one pass with the same two roundings.
 */
export const BIAS_RESIDUAL: CustomOp<"BiasResidual"> = {
  name: "BiasResidual",
  inputs: ["X", "Y", "B"],
  outputs: ["Z"],
  // The driver sums dY over the rows for B.
  gradient: ({ dy }) => [dy, dy, dy],
  gradCheck: [{
    dtype: "float64",
    inputs: [{ shape: [2, 3, 4] }, { shape: [2, 3, 4] }, { shape: [4] }],
    build: ([x, y, b]) => biasResidual(x, y, b),
  }],
  kernel: {
    inputs: [{ shape: [50, 37] }, { shape: [50, 37] }, { shape: [37] }],
    build: ([x, y, b]) => [biasResidual(x, y, b)],
    agreement: "bits",
  },
};

/** x + (y + b) for x and y [..., C] and b [C]. */
export function biasResidual(x: Value, y: Value, b: Value): Value {
  const action = "apply BiasResidual";
  const xs = staticShape(x, action);
  if (
    staticShape(y, action).join() !== xs.join() ||
    staticShape(b, action).join() !== String(xs.at(-1)) ||
    y.dtype !== x.dtype || b.dtype !== x.dtype
  ) {
    throw new TypeError(
      `Cannot ${action} as y must be x's shape [${xs}] and b [${xs.at(-1)}], all of one dtype: ` +
        `current y [${y.shape}] ${y.dtype}, b [${b.shape}] ${b.dtype}, x ${x.dtype}`,
    );
  }
  const rows = symbolicDims(xs.length, "C");
  const definition = traceFunction(
    BIAS_RESIDUAL.name,
    traceInputs(BIAS_RESIDUAL, [x, y, b], [rows, rows, ["C"]]),
    BIAS_RESIDUAL.outputs,
    ([X, Y, B]) => [add(X, add(Y, B))],
  );
  return emitCustomOp(BIAS_RESIDUAL, definition, [x, y, b], [{
    dtype: x.dtype,
    shape: x.shape,
  }])[0];
}

/**
 * The GELU family: `GeluGrad`, `BiasGelu` and `BiasGeluGrad`, the exact (erf) GELU of the MLPs
 * and its gradient. Native kernels: `native/kernels/gelu.cc`.
 * @module
 */
import { staticShape, type Value } from "../graph.ts";
import { add, concat, erf, exp, gelu, mul, reduceSum, reshapeTo, shapeOf } from "../ops.ts";
import {
  type CustomOp,
  emitCustomOp,
  secondOrder,
  symbolicDims,
  traceFunction,
  traceInputs,
} from "./kit.ts";

/**
 * GELU'(x) = Φ(x) + x·φ(x) of the exact GELU, Φ(x) = ½(1 + erf(x/√2)) and
 * φ(x) = e^(−x²/2)/√(2π): the factor its gradient multiplies dY by.
 */
export function geluSlope(x: Value): Value {
  const cdf = mul(add(erf(mul(x, Math.SQRT1_2)), 1), 0.5);
  const pdf = mul(exp(mul(mul(x, x), -0.5)), 1 / Math.sqrt(2 * Math.PI));
  return add(cdf, mul(x, pdf));
}

/** `GeluGrad(dY, X) → dX = dY·GELU'(X)`: the gradient of the exact GELU, elementwise. */
export const GELU_GRAD: CustomOp<"GeluGrad"> = {
  name: "GeluGrad",
  inputs: ["dY", "X"],
  outputs: ["dX"],
  gradient: secondOrder("GeluGrad"),
  // Checked as Gelu's rule (`onnx/gradients_test.ts`), which emits it.
  gradCheck: "not differentiable",
  kernel: {
    inputs: [{ shape: [40, 50] }, { shape: [40, 50] }],
    build: ([dy, x]) => [geluGrad(dy, mul(x, 4))],
    agreement: 1e-6,
  },
};

/** dy·GELU'(x) elementwise; dy and x of one shape. */
export function geluGrad(dy: Value, x: Value): Value {
  if (staticShape(dy, "apply GeluGrad").join() !== staticShape(x, "apply GeluGrad").join()) {
    throw new TypeError(
      `Cannot apply GeluGrad as dY [${dy.shape}] and X [${x.shape}] differ in shape`,
    );
  }
  const shape = symbolicDims(x.shape.length);
  const definition = traceFunction(
    GELU_GRAD.name,
    traceInputs(GELU_GRAD, [dy, x], [shape, shape]),
    GELU_GRAD.outputs,
    ([dY, X]) => [mul(dY, geluSlope(X))],
  );
  return emitCustomOp(GELU_GRAD, definition, [dy, x], [{ dtype: x.dtype, shape: x.shape }])[0];
}

/**
 * `BiasGelu(X, B) → (Y, Slope)`: a linear layer's bias and the exact GELU after it, T = X + B
 * (X [..., M], B [M]), Y = GELU(T), and Slope = GELU'(T), which its gradient multiplies dY by
 * (computed here, where T is at hand, rather than again in the backward pass).
 */
export const BIAS_GELU: CustomOp<"BiasGelu"> = {
  name: "BiasGelu",
  inputs: ["X", "B"],
  outputs: ["Y", "Slope"],
  // dT = dY·GELU'(T), T = X + B: the node's second output holds GELU'(T); dB sums dT's rows.
  gradient: ({ node, dy, dys, needs }) => {
    if (dys[1]) throw new TypeError("Cannot differentiate through BiasGelu's Slope output");
    if (!needs[1]) return [mul(dy, node.outputs[1]), null];
    const [dt, db] = biasGeluGrad(dy, node.outputs[1]);
    return [dt, db];
  },
  // ORT's Gelu is float32 only.
  gradCheck: [{
    dtype: "float32",
    tolerance: 3e-3,
    inputs: [{ shape: [2, 3] }, { shape: [3] }],
    build: ([x, b]) => biasGelu(mul(x, 2), b),
  }],
  kernel: {
    inputs: [{ shape: [50, 37] }, { shape: [37] }],
    build: ([x, b]) => biasGeluNode(mul(x, 3), b),
    agreement: 1e-6,
  },
};

/** GELU(x + b), exact (erf) form, for x [..., M] and b [M]. */
export function biasGelu(x: Value, b: Value): Value {
  return biasGeluNode(x, b)[0];
}

/** Both outputs of the `BiasGelu` node: [GELU(x + b), GELU'(x + b)]. */
function biasGeluNode(x: Value, b: Value): Value[] {
  const xs = staticShape(x, "apply BiasGelu");
  if (staticShape(b, "apply BiasGelu").join() !== String(xs.at(-1)) || b.dtype !== x.dtype) {
    throw new TypeError(
      `Cannot apply BiasGelu as b must be [${xs.at(-1)}] of x's dtype ${x.dtype}: current ` +
        `value is [${b.shape}] ${b.dtype}`,
    );
  }
  const definition = traceFunction(
    BIAS_GELU.name,
    traceInputs(BIAS_GELU, [x, b], [symbolicDims(xs.length, "M"), ["M"]]),
    BIAS_GELU.outputs,
    ([X, B]) => {
      const t = add(X, B);
      return [gelu(t), geluSlope(t)];
    },
  );
  const out = { dtype: x.dtype, shape: x.shape };
  return emitCustomOp(BIAS_GELU, definition, [x, b], [out, out]);
}

/**
 * `BiasGeluGrad(dY, Slope) → (dX, dB)`: the gradients of {@linkcode BIAS_GELU} from its Slope,
 * dX = dY·Slope [..., M] and the bias's dB [M], dX summed over every leading axis (as the
 * driver's bias sums do: a ReduceSum over the rows).
 */
export const BIAS_GELU_GRAD: CustomOp<"BiasGeluGrad"> = {
  name: "BiasGeluGrad",
  inputs: ["dY", "Slope"],
  outputs: ["dX", "dB"],
  gradient: secondOrder("BiasGeluGrad"),
  gradCheck: "not differentiable",
  kernel: {
    inputs: [{ shape: [6, 50, 40] }, { shape: [6, 50, 40] }],
    build: ([dy, slope]) => biasGeluGrad(dy, slope),
    agreement: "bits",
  },
};

/** [dy·slope, its sums over the leading axes [M]] for dy and slope [..., M]. */
export function biasGeluGrad(dy: Value, slope: Value): [Value, Value] {
  const ds = staticShape(dy, "differentiate BiasGelu");
  if (
    staticShape(slope, "differentiate BiasGelu").join() !== ds.join() || slope.dtype !== dy.dtype
  ) {
    throw new TypeError(
      `Cannot differentiate BiasGelu as dY [${ds}] ${dy.dtype} and the slope [${slope.shape}] ` +
        `${slope.dtype} differ`,
    );
  }
  const shape = symbolicDims(ds.length, "M");
  const definition = traceFunction(
    BIAS_GELU_GRAD.name,
    traceInputs(BIAS_GELU_GRAD, [dy, slope], [shape, shape]),
    BIAS_GELU_GRAD.outputs,
    ([dY, Slope]) => {
      const dX = mul(dY, Slope);
      const width = shapeOf(dX, { start: -1 }); // [1]: M
      const rows = reshapeTo(dX, concat([dX.graph.ints([-1]), width], 0), ["R", "M"]);
      const sums = reduceSum(rows, [0], { keepdims: true }); // [1, M]
      return [dX, reshapeTo(sums, width, ["M"])];
    },
  );
  const [dx, db] = emitCustomOp(
    BIAS_GELU_GRAD,
    definition,
    [dy, slope],
    [{ dtype: dy.dtype, shape: ds }, { dtype: dy.dtype, shape: [ds.at(-1)!] }],
  );
  return [dx, db];
}

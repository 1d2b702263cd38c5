/**
 * The layer-norm family: `RowLayerNorm` (LayerNormalization of each row) and `LayerNormGrad`
 * (its gradients, the scale's and bias's row sums included). Native kernels:
 * `native/kernels/layer_norm.cc`. Also the gradient of the standard LayerNormalization op, which
 * shares the composition.
 * @module
 */
import { numel, staticShape, type Value } from "../graph.ts";
import type { GradArgs } from "../gradients.ts";
import {
  cast,
  concat,
  constantOfShape,
  layerNormalization,
  matMul,
  mul,
  reduceMean,
  reshape,
  reshapeTo,
  shapeOf,
  sub,
} from "../ops.ts";
import {
  type CustomOp,
  emitCustomOp,
  nodeInputs,
  secondOrder,
  symbolicDims,
  traceFunction,
  traceInputs,
} from "./kit.ts";

/**
 * `RowLayerNorm(X, Scale, B) → (Y, Mean, InvStd)`: LayerNormalization over the last axis with
 * ε = 1e-5, the transformer's; the statistics are float32 with the last axis kept as 1, as ORT
 * computes them. Its definition is that one standard node; the native kernel normalises each
 * row in one pass.
 */
export const ROW_LAYER_NORM: CustomOp<"RowLayerNorm"> = {
  name: "RowLayerNorm",
  inputs: ["X", "Scale", "B"],
  outputs: ["Y", "Mean", "InvStd"],
  gradient: (args) => layerNormGradients(args, nodeInputs(args)[0].shape.length - 1),
  // ORT keeps μ and 1/σ in float32 even for float64 inputs, so agreement is ~1e-7 relative.
  gradCheck: [{
    dtype: "float64",
    inputs: [{ shape: [2, 3, 5] }, { shape: [5] }, { shape: [5] }],
    build: ([x, s, b]) => mul(rowLayerNorm(mul(x, 2), s, b), 1.5),
  }],
  kernel: {
    inputs: [{ shape: [50, 37] }, { shape: [37] }, { shape: [37] }],
    build: ([x, s, b]) => rowLayerNormNode(mul(x, 3), s, b),
    agreement: 1e-5,
  },
};

/** LayerNormalization of each row (the last axis) of x with ε = 1e-5; scale and bias [C]. */
export function rowLayerNorm(x: Value, scale: Value, bias: Value): Value {
  return rowLayerNormNode(x, scale, bias)[0];
}

function rowLayerNormNode(x: Value, scale: Value, bias: Value): Value[] {
  const c = x.shape.at(-1);
  for (const p of [scale, bias]) {
    if (c === undefined || p.shape.length !== 1 || p.shape[0] !== c) {
      throw new TypeError(
        `Cannot apply RowLayerNorm over the last axis of [${x.shape}] with ${p.name} of shape ` +
          `[${p.shape}]: it must be [${c ?? "?"}]`,
      );
    }
  }
  const definition = traceFunction(
    ROW_LAYER_NORM.name,
    traceInputs(ROW_LAYER_NORM, [x, scale, bias], [symbolicDims(x.shape.length, "C"), ["C"], [
      "C",
    ]]),
    ROW_LAYER_NORM.outputs,
    ([X, Scale, B]) => {
      const y = layerNormalization(X, Scale, B, { epsilon: 1e-5 });
      return y.graph.producer(y)!.outputs;
    },
  );
  const stats = [...x.shape.slice(0, -1), 1];
  return emitCustomOp(ROW_LAYER_NORM, definition, [x, scale, bias], [
    { dtype: x.dtype, shape: x.shape },
    { dtype: "float32", shape: stats },
    { dtype: "float32", shape: stats },
  ]);
}

/**
 * The input gradient of a layer norm over `axes`: with x̂ = (x − μ)·r, r = 1/√(σ² + ε), and
 * g = dy·γ, dx = r·(g − mean(g) − x̂·mean(g·x̂)). Returns [dx, x̂].
 */
function layerNormDx(
  dy: Value,
  x: Value,
  scale: Value,
  mean: Value,
  invStd: Value,
  axes: readonly number[],
): [Value, Value] {
  const xhat = mul(sub(x, mean), invStd);
  const g = mul(dy, scale);
  const gMean = reduceMean(g, axes, { keepdims: true });
  const gxMean = reduceMean(mul(g, xhat), axes, { keepdims: true });
  return [mul(sub(sub(g, gMean), mul(xhat, gxMean)), invStd), xhat];
}

/**
 * `LayerNormGrad(dY, X, Scale, Mean, InvStd) → (dX, dScale, dBias)`: the gradients of a layer
 * norm over the last axis from the forward node's statistics: dX, and γ's and β's gradients
 * [C], the row sums of dY·x̂ and of dY (as products with a row of ones, which ORT runs faster
 * than a ReduceSum). The native kernel runs it in one pass over each row, adding the sums up per
 * block of rows.
 */
export const LAYER_NORM_GRAD: CustomOp<"LayerNormGrad"> = {
  name: "LayerNormGrad",
  inputs: ["dY", "X", "Scale", "Mean", "InvStd"],
  outputs: ["dX", "dScale", "dBias"],
  gradient: secondOrder("LayerNormGrad"),
  // Checked as RowLayerNorm's and LayerNormalization's rules, which emit it.
  gradCheck: "not differentiable",
  kernel: {
    inputs: [
      { shape: [50, 37] },
      { shape: [50, 37] },
      { shape: [37] },
      { shape: [50, 1] },
      { shape: [50, 1], data: Array.from({ length: 50 }, (_, i) => 0.5 + i / 25) },
    ],
    build: ([dy, x, s, m, r]) => layerNormGrad(dy, x, s, m, r),
    agreement: 1e-5,
  },
};

/**
 * [dx [..., C], dScale [C], dBias [C]] of a layer norm over the last axis, from dy and x
 * [..., C], scale [C] and the forward node's mean and inverse standard deviation [..., 1].
 */
export function layerNormGrad(
  dy: Value,
  x: Value,
  scale: Value,
  mean: Value,
  invStd: Value,
): [Value, Value, Value] {
  const action = "apply LayerNormGrad";
  const xs = staticShape(x, action);
  const stats = [...xs.slice(0, -1), 1].join();
  if (
    staticShape(dy, action).join() !== xs.join() ||
    staticShape(scale, action).join() !== String(xs.at(-1)) ||
    staticShape(mean, action).join() !== stats || staticShape(invStd, action).join() !== stats
  ) {
    throw new TypeError(
      `Cannot ${action} as the shapes do not fit x [${xs}]: dY [${dy.shape}], scale ` +
        `[${scale.shape}], mean [${mean.shape}], invStd [${invStd.shape}]`,
    );
  }
  const rows = symbolicDims(xs.length, "C");
  const statDims = symbolicDims(xs.length, 1);
  const definition = traceFunction(
    LAYER_NORM_GRAD.name,
    traceInputs(LAYER_NORM_GRAD, [dy, x, scale, mean, invStd], [
      rows,
      rows,
      ["C"],
      statDims,
      statDims,
    ]),
    LAYER_NORM_GRAD.outputs,
    ([dY, X, Scale, Mean, InvStd]) => {
      const [dX, xhat] = layerNormDx(dY, X, Scale, Mean, InvStd, [-1]);
      const dYXHat = mul(dY, xhat);
      const width = shapeOf(dY, { start: -1 }); // [1]: C
      const rowsShape = concat([dY.graph.ints([-1]), width], 0);
      const dYXHatRows = reshapeTo(dYXHat, rowsShape, ["R", "C"]);
      const dYRows = reshapeTo(dY, rowsShape, ["R", "C"]);
      const onesShape = concat([dY.graph.ints([1]), shapeOf(dYRows, { start: 0, end: 1 })], 0);
      const ones = constantOfShape(onesShape, 1, dY.dtype, [1, "R"]);
      const dScale = reshapeTo(matMul(ones, dYXHatRows), width, ["C"]);
      const dBias = reshapeTo(matMul(ones, dYRows), width, ["C"]);
      return [dX, dScale, dBias];
    },
  );
  const sums = { dtype: x.dtype, shape: scale.shape };
  const [dx, dScale, dBias] = emitCustomOp(LAYER_NORM_GRAD, definition, [
    dy,
    x,
    scale,
    mean,
    invStd,
  ], [{ dtype: x.dtype, shape: x.shape }, sums, sums]);
  return [dx, dScale, dBias];
}

/**
 * The rule of a layer norm over the axes from `axis` (LayerNormalization's; RowLayerNorm's with
 * the last axis): over the last axis one {@linkcode layerNormGrad}; otherwise its composition
 * over the axes, with row sums as products with a constant row of ones.
 */
export function layerNormGradients({ node, dy, needs }: GradArgs, axis: number): (Value | null)[] {
  const [x, scale] = node.inputs as Value[];
  const axes = x.shape.map((_, i) => i).filter((i) => i >= axis);
  const stats = node.outputs.slice(1).map((o) => (o.dtype === x.dtype ? o : cast(o, x.dtype)));
  const [mean, invStd] = stats;
  if (needs[0] && axis === x.shape.length - 1) {
    const [dx, dScale, dBias] = layerNormGrad(dy, x, scale, mean, invStd);
    return [dx, needs[1] ? dScale : null, needs[2] ? dBias : null];
  }
  const [dx, xhat] = needs[0]
    ? layerNormDx(dy, x, scale, mean, invStd, axes)
    : [null, mul(sub(x, mean), invStd)];
  const sumRows = (v: Value) => {
    const shape = staticShape(scale, "differentiate LayerNormalization");
    const cols = numel(shape);
    const rows = numel(v.shape) / cols;
    const ones = v.graph.constant(new Array(rows).fill(1), [1, rows], v.dtype);
    return reshape(matMul(ones, reshape(v, [rows, cols])), shape);
  };
  return [
    dx,
    needs[1] ? sumRows(mul(dy, xhat)) : null,
    needs[2] ? sumRows(dy) : null,
  ];
}

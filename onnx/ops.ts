/**
 * Wrappers for the primitive ONNX ops: each appends one node (named after the ONNX op) to its
 * first input's graph and infers the output's dtype and static shape. Inputs are positional,
 * attributes go in one options object: `gather(table, ids, { axis: 0 })` emits `Gather`.
 *
 * Every op emitted here is a {@linkcode PrimitiveOp} and has exactly one rule in the gradient
 * table (`onnx/gradients.ts`); everything else (GELU's erf form, layer norm, cross-entropy,
 * convolution) is composed from these in `onnx/nn.ts`.
 * @module
 */
import { type Dim, type DType, staticShape, type Value } from "./graph.ts";
import {
  ADAMW,
  BIAS_ATTENTION,
  BIAS_ATTENTION_GRAD,
  BIAS_GELU,
  BIAS_GELU_GRAD,
  BIAS_RESIDUAL,
  COLUMN_SUMS,
  CONV1D_IM2COL,
  CUSTOM_DOMAIN,
  GELU_GRAD,
  LAYER_NORM_GRAD,
  MASKED_CROSS_ENTROPY,
  MASKED_CROSS_ENTROPY_GRAD,
  MATMUL_TRANS_A,
  ROW_LAYER_NORM,
  sumOfSquaresFunction,
} from "./functions.ts";
import { DATA_TYPE, type FunctionData } from "./proto.ts";

/** Every op the wrappers below can emit. */
export type PrimitiveOp =
  | "Add"
  | "Sub"
  | "Mul"
  | "Div"
  | "Pow"
  | "Max"
  | "Min"
  | "Neg"
  | "Exp"
  | "Log"
  | "Sqrt"
  | "Erf"
  | "Tanh"
  | "Sigmoid"
  | "Relu"
  | "Gelu"
  | "Identity"
  | "Cast"
  | "MatMul"
  | "FusedMatMul"
  | "Gather"
  | "Reshape"
  | "Transpose"
  | "Slice"
  | "Concat"
  | "Split"
  | "Pad"
  | "Expand"
  | "Unsqueeze"
  | "Squeeze"
  | "ReduceSum"
  | "ReduceMean"
  | "ReduceMax"
  | "Softmax"
  | "LogSoftmax"
  | "Where"
  | "ArgMax"
  | "Equal"
  | "Less"
  | "Greater"
  | "LayerNormalization"
  | "Conv1dIm2col"
  | "BiasAttention"
  | "BiasAttentionGrad"
  | "GeluGrad"
  | "LayerNormGrad"
  | "ColumnSums"
  | "MatMulTransA"
  | "AdamW"
  | "RowLayerNorm"
  | "MaskedCrossEntropy"
  | "MaskedCrossEntropyGrad"
  | "BiasResidual"
  | "BiasGelu"
  | "BiasGeluGrad"
  | "SumOfSquares";

/**
 * Appends a node of the custom-domain op that `f` defines (named `f.name`) to its first input's
 * graph, registering the definition there for the portable engine.
 */
function customOp(
  f: FunctionData,
  inputs: readonly Value[],
  outputs: readonly { dtype: DType; shape: readonly Dim[] }[],
  attrs: Record<string, number | string> = {},
): Value[] {
  const g = inputs[0].graph;
  g.useFunction(f);
  return g.node(f.name, inputs, outputs, attrs, CUSTOM_DOMAIN);
}

/** A value, or a number turned into a scalar constant of the other operand's dtype. */
export type Operand = Value | number;

const FLOAT_TYPES: readonly DType[] = ["float32", "float64"];

/** Whether `dtype` is a floating-point type (and so can carry gradients). */
export function isFloat(dtype: DType): boolean {
  return FLOAT_TYPES.includes(dtype);
}

function lift(x: Operand, like: Operand[]): Value {
  if (typeof x !== "number") return x;
  const other = like.find((o): o is Value => typeof o !== "number");
  if (!other) throw new TypeError("Cannot lift a number without a tensor operand");
  return other.graph.scalar(x, other.dtype);
}

function sameDims(a: Dim, b: Dim): boolean {
  return a === b;
}

/** Numpy-style broadcast of shapes; TypeError when incompatible. */
export function broadcastShapes(...shapes: (readonly Dim[])[]): Dim[] {
  const rank = Math.max(...shapes.map((s) => s.length));
  const out: Dim[] = [];
  for (let i = 0; i < rank; i++) {
    let d: Dim = 1;
    for (const s of shapes) {
      const e = s[s.length - rank + i] ?? 1;
      if (e === 1) continue;
      if (d === 1) d = e;
      else if (!sameDims(d, e)) {
        throw new TypeError(
          `Cannot broadcast shapes ${shapes.map((x) => `[${x}]`).join(", ")}: dim ${d} vs ${e}`,
        );
      }
    }
    out.push(d);
  }
  return out;
}

function normAxis(axis: number, rank: number): number {
  const a = axis < 0 ? axis + rank : axis;
  if (a < 0 || a >= rank) {
    throw new RangeError(`Cannot use axis ${axis} on a tensor of rank ${rank}`);
  }
  return a;
}

function binary(op: PrimitiveOp, a: Operand, b: Operand, outType?: DType): Value {
  const x = lift(a, [b]);
  const y = lift(b, [a]);
  if (x.dtype !== y.dtype) {
    throw new TypeError(`Cannot apply ${op} to ${x.dtype} and ${y.dtype}`);
  }
  const shape = broadcastShapes(x.shape, y.shape);
  return x.graph.node(op, [x, y], [{ dtype: outType ?? x.dtype, shape }])[0];
}

function unary(op: PrimitiveOp, x: Value, attrs: Record<string, number | string> = {}): Value {
  return x.graph.node(op, [x], [{ dtype: x.dtype, shape: x.shape }], attrs)[0];
}

/** `Add`: a + b, broadcasting. */
export function add(a: Operand, b: Operand): Value {
  return binary("Add", a, b);
}
/** `Sub`: a − b, broadcasting. */
export function sub(a: Operand, b: Operand): Value {
  return binary("Sub", a, b);
}
/** `Mul`: a · b, broadcasting. */
export function mul(a: Operand, b: Operand): Value {
  return binary("Mul", a, b);
}
/** `Div`: a / b, broadcasting. */
export function div(a: Operand, b: Operand): Value {
  return binary("Div", a, b);
}
/** `Pow`: a ^ b, broadcasting. */
export function pow(a: Operand, b: Operand): Value {
  return binary("Pow", a, b);
}
/** `Max` of two tensors, broadcasting. */
export function max(a: Operand, b: Operand): Value {
  return binary("Max", a, b);
}
/** `Min` of two tensors, broadcasting. */
export function min(a: Operand, b: Operand): Value {
  return binary("Min", a, b);
}
/** `Equal` → bool. */
export function equal(a: Operand, b: Operand): Value {
  return binary("Equal", a, b, "bool");
}
/** `Less` → bool. */
export function less(a: Operand, b: Operand): Value {
  return binary("Less", a, b, "bool");
}
/** `Greater` → bool. */
export function greater(a: Operand, b: Operand): Value {
  return binary("Greater", a, b, "bool");
}

/** `Neg`: −x. */
export function neg(x: Value): Value {
  return unary("Neg", x);
}
/** `Exp`. */
export function exp(x: Value): Value {
  return unary("Exp", x);
}
/** `Log` (natural). */
export function log(x: Value): Value {
  return unary("Log", x);
}
/** `Sqrt`. */
export function sqrt(x: Value): Value {
  return unary("Sqrt", x);
}
/** `Erf` (ORT's CPU kernel is float32 only). */
export function erf(x: Value): Value {
  return unary("Erf", x);
}
/** `Tanh`. */
export function tanh(x: Value): Value {
  return unary("Tanh", x);
}
/** `Sigmoid`: 1/(1 + e^−x). */
export function sigmoid(x: Value): Value {
  return unary("Sigmoid", x);
}
/** `Relu`: max(x, 0). */
export function relu(x: Value): Value {
  return unary("Relu", x);
}
/** `Gelu` (opset 20), exact erf form: 0.5·x·(1 + erf(x/√2)); float32 only in ORT. */
export function gelu(x: Value): Value {
  return unary("Gelu", x, { approximate: "none" });
}
/**
 * `GeluGrad` (custom domain, `onnx/functions.ts`): dy·GELU'(x) of the exact GELU, elementwise;
 * dy and x of one shape.
 */
export function geluGrad(dy: Value, x: Value): Value {
  if (staticShape(dy, "apply GeluGrad").join() !== staticShape(x, "apply GeluGrad").join()) {
    throw new TypeError(
      `Cannot apply GeluGrad as dY [${dy.shape}] and X [${x.shape}] differ in shape`,
    );
  }
  return customOp(GELU_GRAD, [dy, x], [{ dtype: x.dtype, shape: x.shape }])[0];
}
/**
 * `BiasGelu` (custom domain, `onnx/functions.ts`): GELU(x + b), exact (erf) form, for x [..., M]
 * and b [M]. The node's second output is GELU'(x + b), which its gradient uses; the same bits as
 * `gelu(add(x, b))` and its gradient on the portable engine.
 */
export function biasGelu(x: Value, b: Value): Value {
  const xs = staticShape(x, "apply BiasGelu");
  if (staticShape(b, "apply BiasGelu").join() !== String(xs.at(-1)) || b.dtype !== x.dtype) {
    throw new TypeError(
      `Cannot apply BiasGelu as b must be [${xs.at(-1)}] of x's dtype ${x.dtype}: current ` +
        `value is [${b.shape}] ${b.dtype}`,
    );
  }
  const out = { dtype: x.dtype, shape: x.shape };
  return customOp(BIAS_GELU, [x, b], [out, out])[0];
}
/**
 * `BiasGeluGrad` (custom domain): the gradients of {@linkcode biasGelu} from dy and the node's
 * slope output, both [..., M] → [dx = dy·slope, db [M] = dx summed over the leading axes].
 */
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
  const [dx, db] = customOp(
    BIAS_GELU_GRAD,
    [dy, slope],
    [{ dtype: dy.dtype, shape: ds }, { dtype: dy.dtype, shape: [ds.at(-1)!] }],
  );
  return [dx, db];
}
/** `Identity`. */
export function identity(x: Value): Value {
  return unary("Identity", x);
}

/** `Cast` to another dtype. */
export function cast(x: Value, to: DType): Value {
  return x.graph.node("Cast", [x], [{ dtype: to, shape: x.shape }], { to: DATA_TYPE[to] })[0];
}

/** `MatMul` with numpy semantics for operands of rank ≥ 2 (batch dims broadcast). */
export function matMul(a: Value, b: Value): Value {
  if (a.shape.length < 2 || b.shape.length < 2) {
    throw new TypeError(
      `Cannot MatMul ${a.name} [${a.shape}] and ${b.name} [${b.shape}]: both need rank ≥ 2`,
    );
  }
  const m = a.shape[a.shape.length - 2];
  const k = a.shape[a.shape.length - 1];
  const k2 = b.shape[b.shape.length - 2];
  const n = b.shape[b.shape.length - 1];
  if (!sameDims(k, k2)) {
    throw new TypeError(`Cannot MatMul [${a.shape}] by [${b.shape}]: inner dims ${k} ≠ ${k2}`);
  }
  const batch = broadcastShapes(a.shape.slice(0, -2), b.shape.slice(0, -2));
  return binaryNode("MatMul", a, b, [...batch, m, n]);
}

/** The ONNX Runtime contrib domain, home of `FusedMatMul`. */
export const MS_DOMAIN = "com.microsoft";

/** Options of {@linkcode fusedMatMul}. */
export interface FusedMatMulOptions {
  /** Use Aᵀ (last two axes swapped). */
  transA?: boolean;
  /** Use Bᵀ (last two axes swapped). */
  transB?: boolean;
  /** Scale of the product. */
  alpha?: number;
}

/**
 * `FusedMatMul` (ORT's `com.microsoft` domain): alpha·op(A)·op(B), op = identity or a swap of the
 * last two axes, batch dims broadcast as `MatMul`. The transposes happen inside the GEMM, so a
 * product with a transposed operand costs no `Transpose` pass. ORT's CPU kernel is float32 only.
 */
export function fusedMatMul(a: Value, b: Value, opts: FusedMatMulOptions = {}): Value {
  const ra = a.shape.length;
  const rb = b.shape.length;
  if (ra < 2 || rb < 2) {
    throw new TypeError(
      `Cannot FusedMatMul ${a.name} [${a.shape}] and ${b.name} [${b.shape}]: both need rank ≥ 2`,
    );
  }
  if (a.dtype !== "float32" || b.dtype !== "float32") {
    throw new TypeError(
      `Cannot FusedMatMul ${a.dtype} by ${b.dtype}: ORT's kernel is float32 only`,
    );
  }
  const transA = opts.transA ?? false;
  const transB = opts.transB ?? false;
  const m = a.shape[transA ? ra - 1 : ra - 2];
  const k = a.shape[transA ? ra - 2 : ra - 1];
  const k2 = b.shape[transB ? rb - 1 : rb - 2];
  const n = b.shape[transB ? rb - 2 : rb - 1];
  if (!sameDims(k, k2)) {
    throw new TypeError(
      `Cannot FusedMatMul [${a.shape}]${transA ? "ᵀ" : ""} by [${b.shape}]${
        transB ? "ᵀ" : ""
      }: inner dims ${k} ≠ ${k2}`,
    );
  }
  const batch = broadcastShapes(a.shape.slice(0, -2), b.shape.slice(0, -2));
  return a.graph.node(
    "FusedMatMul",
    [a, b],
    [{ dtype: a.dtype, shape: [...batch, m, n] }],
    {
      transA: transA ? 1 : 0,
      transB: transB ? 1 : 0,
      alpha: { kind: "float", value: opts.alpha ?? 1 },
    },
    MS_DOMAIN,
  )[0];
}

function binaryNode(op: PrimitiveOp, a: Value, b: Value, shape: Dim[]): Value {
  if (a.dtype !== b.dtype) throw new TypeError(`Cannot apply ${op} to ${a.dtype} and ${b.dtype}`);
  return a.graph.node(op, [a, b], [{ dtype: a.dtype, shape }])[0];
}

/** `Gather` along `axis`: out shape = data[:axis] + indices + data[axis+1:]. */
export function gather(data: Value, indices: Value, opts: { axis?: number } = {}): Value {
  const axis = normAxis(opts.axis ?? 0, data.shape.length);
  if (indices.dtype !== "int32" && indices.dtype !== "int64") {
    throw new TypeError(`Cannot Gather with ${indices.dtype} indices: int32 or int64 needed`);
  }
  const shape = [...data.shape.slice(0, axis), ...indices.shape, ...data.shape.slice(axis + 1)];
  return data.graph.node("Gather", [data, indices], [{ dtype: data.dtype, shape }], { axis })[0];
}

/**
 * `Reshape` to `shape`; one entry may be −1. A symbolic dim may appear only where the input has
 * the same symbolic dim at the same position (it is then emitted as 0, "copy").
 *
 * A reshape to the shape `x` already has is still a node: dropping those changed which of ONNX
 * Runtime's fusions applied, and with them the bits of trained models (the dilated CNN's at once,
 * the transformer's after a few hundred steps), which every calibrated threshold rests on.
 */
export function reshape(x: Value, shape: readonly Dim[]): Value {
  const literal: number[] = [];
  let known = 1;
  let inferAt = -1;
  shape.forEach((d, i) => {
    if (typeof d === "string") {
      if (x.shape[i] !== d) {
        throw new TypeError(`Cannot reshape [${x.shape}] to [${shape}]: symbolic dim ${d}`);
      }
      literal.push(0);
    } else if (d === -1) {
      if (inferAt >= 0) throw new TypeError(`Cannot reshape to [${shape}]: two −1 entries`);
      inferAt = i;
      literal.push(-1);
    } else {
      known *= d;
      literal.push(d);
    }
  });
  const out: Dim[] = [...shape];
  if (inferAt >= 0) {
    const total = x.shape.reduce<number>(
      (n, d, i) => typeof d === "number" ? n * d : (shape[i] === d ? n : NaN),
      1,
    );
    if (!Number.isFinite(total) || total % known !== 0) {
      throw new TypeError(`Cannot reshape [${x.shape}] to [${shape}]`);
    }
    out[inferAt] = total / known;
  } else if (
    shape.every((d) => typeof d === "number") && x.shape.every((d) => typeof d === "number")
  ) {
    const a = (x.shape as number[]).reduce((n, d) => n * d, 1);
    if (a !== known) throw new TypeError(`Cannot reshape [${x.shape}] (${a}) to [${shape}]`);
  }
  return x.graph.node("Reshape", [x, x.graph.ints(literal)], [{ dtype: x.dtype, shape: out }])[0];
}

/** `Transpose` with permutation `perm` (default: reverse). */
export function transpose(x: Value, perm?: readonly number[]): Value {
  const p = perm ?? x.shape.map((_, i) => x.shape.length - 1 - i);
  if (p.length !== x.shape.length || [...p].sort().some((v, i) => v !== i)) {
    throw new TypeError(`Cannot transpose rank ${x.shape.length} with perm [${p}]`);
  }
  return x.graph.node("Transpose", [x], [{ dtype: x.dtype, shape: p.map((i) => x.shape[i]) }], {
    perm: [...p],
  })[0];
}

/** Normalised static slice bounds of one axis (step 1). */
export function sliceBounds(dim: number, start: number, end: number): [number, number] {
  const clamp = (v: number) => Math.min(Math.max(v < 0 ? v + dim : v, 0), dim);
  const s = clamp(start);
  return [s, Math.max(s, clamp(end))];
}

/** `Slice` with unit steps along `axes`; bounds are static. */
export function slice(
  x: Value,
  starts: readonly number[],
  ends: readonly number[],
  axes?: readonly number[],
): Value {
  const ax = (axes ?? starts.map((_, i) => i)).map((a) => normAxis(a, x.shape.length));
  const shape = [...x.shape];
  ax.forEach((a, i) => {
    const d = staticShape(x, "slice")[a];
    const [s, e] = sliceBounds(d, starts[i], ends[i]);
    shape[a] = e - s;
  });
  const g = x.graph;
  return g.node("Slice", [x, g.ints(starts), g.ints(ends), g.ints(ax)], [{
    dtype: x.dtype,
    shape,
  }])[0];
}

/** `Concat` along `axis`. */
export function concat(xs: readonly Value[], axis: number): Value {
  const rank = xs[0].shape.length;
  const a = normAxis(axis, rank);
  const shape = [...xs[0].shape];
  shape[a] = xs.reduce((n, x) => n + (staticShape(x, "concat")[a]), 0);
  return xs[0].graph.node("Concat", xs, [{ dtype: xs[0].dtype, shape }], { axis: a })[0];
}

/** `Split` along `axis` into pieces of the given sizes. */
export function split(x: Value, sizes: readonly number[], axis: number): Value[] {
  const a = normAxis(axis, x.shape.length);
  const total = staticShape(x, "split")[a];
  if (sizes.reduce((s, v) => s + v, 0) !== total) {
    throw new RangeError(`Cannot split dim ${total} into [${sizes}]`);
  }
  const outs = sizes.map((s) => {
    const shape = [...x.shape];
    shape[a] = s;
    return { dtype: x.dtype, shape };
  });
  return x.graph.node("Split", [x, x.graph.ints(sizes)], outs, { axis: a });
}

/** `Pad` with a constant; `pads` = [begin_0, …, begin_{r−1}, end_0, …, end_{r−1}]. */
export function pad(x: Value, pads: readonly number[], value = 0): Value {
  const r = x.shape.length;
  if (pads.length !== 2 * r) throw new TypeError(`Cannot pad rank ${r} with [${pads}]`);
  const shape = x.shape.map((d, i) =>
    pads[i] === 0 && pads[i + r] === 0 ? d : (d as number) + pads[i] + pads[i + r]
  );
  const g = x.graph;
  return g.node("Pad", [x, g.ints(pads), g.scalar(value, x.dtype)], [{ dtype: x.dtype, shape }], {
    mode: "constant",
  })[0];
}

/** `Expand` (broadcast) to `shape`. */
export function expand(x: Value, shape: readonly number[]): Value {
  const out = broadcastShapes(x.shape, shape);
  return x.graph.node("Expand", [x, x.graph.ints(shape)], [{ dtype: x.dtype, shape: out }])[0];
}

/** `Unsqueeze`: insert unit dims at `axes` (of the output). */
export function unsqueeze(x: Value, axes: readonly number[]): Value {
  const rank = x.shape.length + axes.length;
  const ax = axes.map((a) => normAxis(a, rank));
  const shape: Dim[] = [];
  let j = 0;
  for (let i = 0; i < rank; i++) shape.push(ax.includes(i) ? 1 : x.shape[j++]);
  return x.graph.node("Unsqueeze", [x, x.graph.ints(ax)], [{ dtype: x.dtype, shape }])[0];
}

/** `Squeeze`: remove the unit dims at `axes`. */
export function squeeze(x: Value, axes: readonly number[]): Value {
  const ax = axes.map((a) => normAxis(a, x.shape.length));
  for (const a of ax) {
    if (x.shape[a] !== 1) throw new TypeError(`Cannot squeeze axis ${a} of [${x.shape}]`);
  }
  const shape = x.shape.filter((_, i) => !ax.includes(i));
  return x.graph.node("Squeeze", [x, x.graph.ints(ax)], [{ dtype: x.dtype, shape }])[0];
}

function reduced(x: Value, axes: readonly number[], keepdims: boolean): [number[], Dim[]] {
  const ax = axes.map((a) => normAxis(a, x.shape.length)).sort((a, b) => a - b);
  const shape: Dim[] = [];
  x.shape.forEach((d, i) => {
    if (!ax.includes(i)) shape.push(d);
    else if (keepdims) shape.push(1);
  });
  return [ax, shape];
}

function reduce(op: PrimitiveOp, x: Value, axes?: readonly number[], keepdims = false): Value {
  const [ax, shape] = reduced(x, axes ?? x.shape.map((_, i) => i), keepdims);
  return x.graph.node(op, [x, x.graph.ints(ax)], [{ dtype: x.dtype, shape }], {
    keepdims: keepdims ? 1 : 0,
  })[0];
}

/** `ReduceSum` over `axes` (default all). */
export function reduceSum(
  x: Value,
  axes?: readonly number[],
  opts: { keepdims?: boolean } = {},
): Value {
  return reduce("ReduceSum", x, axes, opts.keepdims ?? false);
}
/**
 * `ColumnSums` (custom domain, `onnx/functions.ts`): x [R, C] → [1, C], each column's sum, as
 * `reduceSum(x, [0], { keepdims: true })` computes it (the same bits), with a native kernel.
 */
export function columnSums(x: Value): Value {
  if (x.shape.length !== 2) {
    throw new TypeError(`Cannot apply ColumnSums to [${x.shape}]: x must have rank 2`);
  }
  return customOp(
    COLUMN_SUMS,
    [x],
    [{ dtype: x.dtype, shape: [1, x.shape[1]] }],
  )[0];
}

/**
 * `MatMulTransA` (custom domain, `onnx/functions.ts`): a [K, M], b [K, N] → aᵀ·b [M, N], as
 * `matMul(transpose(a, [1, 0]), b)` computes it on the portable engine (the same bits); the
 * native kernel reads a in place.
 */
export function matMulTransA(a: Value, b: Value): Value {
  const as = staticShape(a, "apply MatMulTransA");
  const bs = staticShape(b, "apply MatMulTransA");
  if (as.length !== 2 || bs.length !== 2 || as[0] !== bs[0] || a.dtype !== b.dtype) {
    throw new TypeError(
      "Cannot apply MatMulTransA as a [K, M] and b [K, N] must be matrices of one dtype with " +
        `as many rows: current a [${as}] ${a.dtype}, b [${bs}] ${b.dtype}`,
    );
  }
  return customOp(MATMUL_TRANS_A, [a, b], [{ dtype: a.dtype, shape: [as[1], bs[1]] }])[0];
}

/** `ReduceMean` over `axes` (default all). */
export function reduceMean(
  x: Value,
  axes?: readonly number[],
  opts: { keepdims?: boolean } = {},
): Value {
  return reduce("ReduceMean", x, axes, opts.keepdims ?? false);
}
/** `ReduceMax` over `axes` (default all). */
export function reduceMax(
  x: Value,
  axes?: readonly number[],
  opts: { keepdims?: boolean } = {},
): Value {
  return reduce("ReduceMax", x, axes, opts.keepdims ?? false);
}

/** `Softmax` along `axis` (default last). */
export function softmax(x: Value, opts: { axis?: number } = {}): Value {
  return unary("Softmax", x, { axis: normAxis(opts.axis ?? -1, x.shape.length) });
}
/** `LogSoftmax` along `axis` (default last). */
export function logSoftmax(x: Value, opts: { axis?: number } = {}): Value {
  return unary("LogSoftmax", x, { axis: normAxis(opts.axis ?? -1, x.shape.length) });
}

/** `Where`: cond ? a : b, broadcasting. */
export function where(cond: Value, a: Operand, b: Operand): Value {
  const x = lift(a, [b]);
  const y = lift(b, [a]);
  if (cond.dtype !== "bool") throw new TypeError(`Cannot use ${cond.dtype} as Where condition`);
  const shape = broadcastShapes(cond.shape, x.shape, y.shape);
  return cond.graph.node("Where", [cond, x, y], [{ dtype: x.dtype, shape }])[0];
}

/**
 * One-hot encoding along a new last axis: 1 where index = class, else 0, in `dtype`. Composed
 * as `Cast(Equal(indices, classes))` because ORT's `OneHot` kernels cover few dtype combinations
 * (none with float64 values).
 */
export function oneHot(indices: Value, depth: number, dtype: DType = "float32"): Value {
  const g = indices.graph;
  const classes = g.constant(Array.from({ length: depth }, (_, i) => i), [depth], indices.dtype);
  return cast(equal(unsqueeze(indices, [-1]), classes), dtype);
}

/** `ArgMax` along `axis` → int64. */
export function argMax(x: Value, opts: { axis?: number; keepdims?: boolean } = {}): Value {
  const [ax, shape] = reduced(x, [opts.axis ?? -1], opts.keepdims ?? false);
  return x.graph.node("ArgMax", [x], [{ dtype: "int64", shape }], {
    axis: ax[0],
    keepdims: opts.keepdims ? 1 : 0,
  })[0];
}

/** A graph's scalar constant helper re-exported for rules and composed ops. */
export function scalarLike(x: Value, v: number): Value {
  return x.graph.scalar(v, x.dtype);
}

/**
 * `LayerNormalization` (opset 17) over the axes from `axis` (default last) on:
 * (x − μ)/√(σ² + ε)·scale + bias, with `scale` and `bias` of shape x.shape[axis:]. The node also
 * outputs μ and 1/√(σ² + ε) (float32 as ORT computes them, reduced axes kept as 1) for the
 * gradient rule; the wrapper returns the normalised value.
 */
export function layerNormalization(
  x: Value,
  scale: Value,
  bias: Value,
  opts: { axis?: number; epsilon?: number } = {},
): Value {
  const axis = normAxis(opts.axis ?? -1, x.shape.length);
  const tail = x.shape.slice(axis);
  for (const p of [scale, bias]) {
    if (p.shape.length !== tail.length || p.shape.some((d, i) => !sameDims(d, tail[i]))) {
      throw new TypeError(
        `Cannot apply LayerNormalization over [${tail}] with ${p.name} of shape [${p.shape}]`,
      );
    }
  }
  const stats = x.shape.map((d, i) => (i < axis ? d : 1));
  return x.graph.node("LayerNormalization", [x, scale, bias], [
    { dtype: x.dtype, shape: x.shape },
    { dtype: "float32", shape: stats },
    { dtype: "float32", shape: stats },
  ], { axis, epsilon: { kind: "float", value: opts.epsilon ?? 1e-5 } })[0];
}

/**
 * `RowLayerNorm` (custom domain, `onnx/functions.ts`): {@linkcode layerNormalization} of each
 * row (the last axis) with ε = 1e-5, as one op with a native kernel; its ONNX definition is
 * that `LayerNormalization` node, so the portable engine computes the same bits as before.
 */
export function rowLayerNorm(x: Value, scale: Value, bias: Value): Value {
  const c = x.shape.at(-1);
  for (const p of [scale, bias]) {
    if (c === undefined || p.shape.length !== 1 || !sameDims(p.shape[0], c)) {
      throw new TypeError(
        `Cannot apply RowLayerNorm over the last axis of [${x.shape}] with ${p.name} of shape ` +
          `[${p.shape}]: it must be [${c ?? "?"}]`,
      );
    }
  }
  const stats = [...x.shape.slice(0, -1), 1];
  return customOp(
    ROW_LAYER_NORM,
    [x, scale, bias],
    [
      { dtype: x.dtype, shape: x.shape },
      { dtype: "float32", shape: stats },
      { dtype: "float32", shape: stats },
    ],
  )[0];
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

/** Options of {@linkcode conv1dIm2col}. */
export interface Conv1dOptions {
  kernel: number;
  dilation?: number;
}

/**
 * `Conv1dIm2col` (domain `ai.claimbench`, defined as an ONNX function in `onnx/functions.ts`):
 * a "same"-length 1-D convolution in channel-last layout. x [B, L, C_in]; w [kernel·C_in, C_out]
 * with w[j·C_in + i, o] = W_torch[o, i, j]; b [C_out] → [B, L, C_out]. Returns the output and
 * the im2col matrix [B·L, kernel·C_in].
 */
export function conv1dIm2col(x: Value, w: Value, b: Value, opts: Conv1dOptions): [Value, Value] {
  const [batch, length, cin] = staticShape(x, "convolve");
  const [rows, cout] = staticShape(w, "convolve");
  const k = opts.kernel;
  const d = opts.dilation ?? 1;
  if (!Number.isInteger(k) || k < 1 || k % 2 !== 1) {
    throw new RangeError(
      `Cannot convolve to the same length with kernel ${k}: an odd size is needed`,
    );
  }
  if (rows !== k * cin) {
    throw new TypeError(
      `Cannot convolve [${x.shape}] with weight [${w.shape}]: ${k}·${cin} rows needed`,
    );
  }
  const p = ((k - 1) / 2) * d;
  const g = x.graph;
  const [y, cols] = customOp(
    CONV1D_IM2COL,
    [
      x,
      w,
      b,
      g.constant(im2colIndex(length, k, d), [length, k], "int64"),
      g.ints([0, p, 0, 0, p, 0]),
      g.ints([batch * length, k * cin]),
      g.ints([batch, length, cout]),
    ],
    [{ dtype: x.dtype, shape: [batch, length, cout] }, {
      dtype: x.dtype,
      shape: [batch * length, k * cin],
    }],
    { kernel: k, dilation: d },
  );
  return [y, cols];
}

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

/**
 * `BiasAttention` (custom domain, `onnx/functions.ts`): multi-head attention from the packed
 * projections qkv [B, T, 3C] (q | k | v, each head-major) with bias [H, T, T] on the scores:
 * per head softmax(scale·q·kᵀ + bias[h])·v, heads side by side → [B, T, C].
 */
export function biasAttention(qkv: Value, bias: Value, scale: number): Value {
  const shape = checkAttentionShapes("apply BiasAttention", qkv, bias);
  const g = qkv.graph;
  return customOp(
    BIAS_ATTENTION,
    [qkv, bias, g.scalar(scale, qkv.dtype)],
    [{ dtype: qkv.dtype, shape }],
  )[0];
}

/**
 * `BiasAttentionGrad` (custom domain): the gradient with respect to qkv of
 * {@linkcode biasAttention}, given dy [B, T, C] and the forward node's inputs (`scale` is its
 * scalar constant) → [B, T, 3C].
 */
export function biasAttentionGrad(dy: Value, qkv: Value, bias: Value, scale: Value): Value {
  checkAttentionShapes("differentiate BiasAttention", qkv, bias, dy);
  return customOp(
    BIAS_ATTENTION_GRAD,
    [dy, qkv, bias, scale],
    [{ dtype: qkv.dtype, shape: qkv.shape }],
  )[0];
}

/**
 * `LayerNormGrad` (custom domain, `onnx/functions.ts`): the gradients of LayerNormalization
 * over the last axis, dx [..., C] and the scale's and bias's [C] (the row sums of dy·x̂ and of
 * dy), from dy and x [..., C], scale [C] and the forward node's mean and inverse standard
 * deviation [..., 1] (all of x's dtype).
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
  const sums = { dtype: x.dtype, shape: scale.shape };
  const [dx, dScale, dBias] = customOp(
    LAYER_NORM_GRAD,
    [dy, x, scale, mean, invStd],
    [{ dtype: x.dtype, shape: x.shape }, sums, sums],
  );
  return [dx, dScale, dBias];
}

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

/**
 * `AdamW` (custom domain, `onnx/functions.ts`): one AdamW step on flat vectors p, m, v, grad and
 * the 0/1 decay mask, all [N] → [p1, m1, v1]; see {@linkcode ADAMW} for the arithmetic.
 */
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
  const out = { dtype: p.dtype, shape: p.shape };
  const [p1, m1, v1] = customOp(ADAMW, [...vectors, ...scalars], [out, out, out]);
  return [p1, m1, v1];
}

/** Checks the shapes and dtypes of the cross-entropy ops: logits [..., V], targets and mask [...]. */
function checkCrossEntropy(action: string, logits: Value, targets: Value, mask: Value): void {
  const ls = staticShape(logits, action);
  const rows = ls.slice(0, -1).join();
  if (
    ls.length < 1 || !isFloat(logits.dtype) || mask.dtype !== logits.dtype ||
    targets.dtype !== "int32" ||
    staticShape(targets, action).join() !== rows || staticShape(mask, action).join() !== rows
  ) {
    throw new TypeError(
      `Cannot ${action}: logits must be float [..., V], targets int32 [...] and mask ` +
        `[...] of the logits' dtype: current logits [${logits.shape}] ${logits.dtype}, targets ` +
        `[${targets.shape}] ${targets.dtype}, mask [${mask.shape}] ${mask.dtype}`,
    );
  }
}

/**
 * `MaskedCrossEntropy` (custom domain, `onnx/functions.ts`): Σ mask·(−log softmax(logits)[target])
 * / Σ mask over every position; logits [..., V], targets (int32, the native kernel's type) and
 * mask [...] → scalar.
 */
export function maskedCrossEntropy(logits: Value, targets: Value, mask: Value): Value {
  checkCrossEntropy("apply MaskedCrossEntropy", logits, targets, mask);
  return customOp(
    MASKED_CROSS_ENTROPY,
    [logits, targets, mask],
    [{ dtype: logits.dtype, shape: [] }],
  )[0];
}

/**
 * `MaskedCrossEntropyGrad` (custom domain): the gradient of {@linkcode maskedCrossEntropy} with
 * respect to the logits, given the loss's gradient dLoss (a scalar) → [..., V].
 */
export function maskedCrossEntropyGrad(
  dLoss: Value,
  logits: Value,
  targets: Value,
  mask: Value,
): Value {
  checkCrossEntropy("differentiate MaskedCrossEntropy", logits, targets, mask);
  if (dLoss.shape.length !== 0 || dLoss.dtype !== logits.dtype) {
    throw new TypeError(
      `Cannot differentiate MaskedCrossEntropy as dLoss must be a ${logits.dtype} scalar: ` +
        `current value is [${dLoss.shape}] ${dLoss.dtype}`,
    );
  }
  return customOp(
    MASKED_CROSS_ENTROPY_GRAD,
    [dLoss, logits, targets, mask],
    [{ dtype: logits.dtype, shape: logits.shape }],
  )[0];
}

/**
 * `BiasResidual` (custom domain, `onnx/functions.ts`): x + (y + b), a residual connection around
 * a linear layer whose product is y; x and y [..., C], b [C]. The same bits as
 * `add(x, add(y, b))`, in one pass on the native engine.
 */
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
  return customOp(
    BIAS_RESIDUAL,
    [x, y, b],
    [{ dtype: x.dtype, shape: x.shape }],
  )[0];
}

/**
 * `SumOfSquares` (custom domain, `onnx/functions.ts`): Σ g² of a flat vector g [N] made of
 * tensors of `sizes` elements one after another → scalar; on the portable engine the bits of
 * summing each tensor's `reduceSum(mul(x, x))` in order. One per graph (its definition depends
 * on `sizes`).
 */
export function sumOfSquares(g: Value, sizes: readonly number[]): Value {
  const n = staticShape(g, "apply SumOfSquares");
  const total = sizes.reduce((a, b) => a + b, 0);
  if (n.length !== 1 || n[0] !== total) {
    throw new TypeError(
      `Cannot apply SumOfSquares as g must be a vector of ${total} elements (the sizes' sum): ` +
        `current shape is [${n}]`,
    );
  }
  return customOp(sumOfSquaresFunction(sizes), [g], [{ dtype: g.dtype, shape: [] }])[0];
}

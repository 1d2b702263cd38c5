/**
 * The gradient table: one reverse-mode rule per op (the primitives' here, each custom op's from
 * its family file in `onnx/custom/`), `null` for inputs that carry no gradient. Rules may return a gradient in the broadcast (output) shape; the driver
 * (`onnx/autodiff.ts`) sums it back to the input's shape, in one place.
 * @module
 */
import { type Node, numel, staticShape, type Value } from "./graph.ts";
import { geluGrad } from "./custom/gelu.ts";
import { layerNormGradients } from "./custom/layer_norm.ts";
import { matMulTransA } from "./custom/linear.ts";
import { CUSTOM_OPS, type CustomOpName } from "./custom/registry.ts";
import {
  cast,
  concat,
  div,
  equal,
  exp,
  expand,
  fusedMatMul,
  type FusedMatMulOptions,
  greater,
  less,
  log,
  matMul,
  mul,
  neg,
  oneHot,
  pad,
  type PrimitiveOp,
  reduceSum,
  reshape,
  sigmoid,
  slice,
  sliceBounds,
  split,
  sub,
  transpose,
  where,
} from "./ops.ts";

/** What a rule sees: the node, its output gradients, and which inputs need a gradient. */
export interface GradArgs {
  readonly node: Node;
  /** Gradient of the first output (rules of single-output ops use only this). */
  readonly dy: Value;
  /** Gradient of each output; null where an output does not reach the loss. */
  readonly dys: readonly (Value | null)[];
  /** Whether input i needs a gradient. */
  readonly needs: readonly boolean[];
}

/** A reverse-mode rule: the gradient for each input of the node, or null. */
export type GradRule = (a: GradArgs) => (Value | null)[];

function ins(n: Node): Value[] {
  return n.inputs as Value[];
}

function constInts(v: Value | null, what: string): number[] {
  const data = v && v.graph.initializerData(v);
  if (!data) throw new TypeError(`Cannot differentiate: ${what} must be a constant`);
  return Array.from(data as ArrayLike<number | bigint>, Number);
}

function zerosLike(v: Value): Value {
  return expand(v.graph.scalar(0, v.dtype), staticShape(v, "build zeros"));
}

function notDifferentiable(op: string): GradRule {
  return () => {
    throw new TypeError(`Cannot differentiate through ${op}: its outputs are not differentiable`);
  };
}

function transposeLast2(x: Value): Value {
  const r = x.shape.length;
  const perm = x.shape.map((_, i) => i);
  [perm[r - 2], perm[r - 1]] = [perm[r - 1], perm[r - 2]];
  return transpose(x, perm);
}

/**
 * α·op(A)·op(B) as Transpose + MatMul (+ Mul), which ORT's optimiser fuses into a FusedMatMul.
 * Emitting FusedMatMul directly (float32) was ~10% faster but fused differently from ORT's own
 * pass: the rounding changed, and with it Hard-ALiBi's trained 4× accuracy (0.75 → 0.51 median,
 * see README "Deviations and known limits"), so the models keep the calibrated graph.
 */
function product(a: Value, b: Value, opts: FusedMatMulOptions = {}): Value {
  const y = matMul(opts.transA ? transposeLast2(a) : a, opts.transB ? transposeLast2(b) : b);
  return (opts.alpha ?? 1) === 1 ? y : mul(y, opts.alpha!);
}

/**
 * MatMul: dA = dY·Bᵀ, dB = Aᵀ·dY; a rank-2 B against batched A folds the batch into rows. A
 * rank-2 dB is one `MatMulTransA` (the native engine reads Aᵀ in place).
 */
function matMulGrad({ node, dy, needs }: GradArgs): (Value | null)[] {
  const [a, b] = ins(node);
  let da: Value | null = null;
  let db: Value | null = null;
  if (needs[0]) da = product(dy, b, { transB: true });
  if (needs[1]) {
    if (b.shape.length === 2 && a.shape.length > 2) {
      // [..., m, k]ᵀ·[..., m, n] summed over the batch = one [k, rows]·[rows, n] product.
      const k = staticShape(a, "differentiate MatMul").at(-1)!;
      const n = staticShape(dy, "differentiate MatMul").at(-1)!;
      db = matMulTransA(reshape(a, [-1, k]), reshape(dy, [-1, n]));
    } else if (a.shape.length === 2 && b.shape.length === 2) {
      db = matMulTransA(a, dy);
    } else {
      db = product(a, dy, { transA: true });
    }
  }
  return [da, db];
}

/**
 * FusedMatMul, Y = α·op(A)·op(B): each input's gradient is again one FusedMatMul,
 *   A·B:   dA = α·dY·Bᵀ,  dB = α·Aᵀ·dY        A·Bᵀ:  dA = α·dY·B,   dB = α·dYᵀ·A
 *   Aᵀ·B:  dA = α·B·dYᵀ,  dB = α·A·dY         Aᵀ·Bᵀ: dA = α·Bᵀ·dYᵀ, dB = α·dYᵀ·Aᵀ
 */
function fusedMatMulGrad({ node, dy, needs }: GradArgs): (Value | null)[] {
  const [a, b] = ins(node);
  const tA = node.attrs.transA === 1;
  const tB = node.attrs.transB === 1;
  const alpha = (node.attrs.alpha as { value: number }).value;
  const da = !needs[0]
    ? null
    : tA
    ? fusedMatMul(b, dy, { transA: tB, transB: true, alpha })
    : fusedMatMul(dy, b, { transB: !tB, alpha });
  const db = !needs[1]
    ? null
    : tB
    ? fusedMatMul(dy, a, { transA: true, transB: tA, alpha })
    : fusedMatMul(a, dy, { transA: !tA, alpha });
  return [da, db];
}

/**
 * Gather: the gradient scatters dY back to the gathered rows. As a product with the one-hot
 * matrix M[i, r] = [indices_i = r]: dData = Mᵀ·dY, a MatMul, which ORT runs much faster than
 * ScatterND's element loop. With constant indices Mᵀ is a constant.
 */
function gatherGrad({ node, dy }: GradArgs): (Value | null)[] {
  const [data, indices] = ins(node);
  const axis = node.attrs.axis as number;
  const shape = staticShape(data, "differentiate Gather");
  const n = shape[axis];
  const pre = shape.slice(0, axis).reduce((p, d) => p * d, 1);
  const post = shape.slice(axis + 1).reduce((p, d) => p * d, 1);
  const nI = numel(indices.shape);
  const g = data.graph;
  const constIdx = g.initializerData(indices);
  let mt: Value; // [n, nI]
  if (constIdx) {
    const m = new (data.dtype === "float64" ? Float64Array : Float32Array)(n * nI);
    for (let i = 0; i < nI; i++) {
      const r = Number(constIdx[i]);
      m[(r < 0 ? r + n : r) * nI + i] = 1;
    }
    mt = g.constant(m, [n, nI], data.dtype);
  } else {
    mt = transpose(oneHot(reshape(indices, [nI]), n, data.dtype));
  }
  const dd = pre === 1
    ? matMul(mt, reshape(dy, [nI, post])) // [n, post]
    : matMul(mt, reshape(dy, [pre, nI, post])); // [pre, n, post]
  return [reshape(dd, shape), null];
}

/** Expands a reduced gradient (keepdims or not) back to the input's shape. */
function unreduce(dy: Value, x: Value, axes: number[]): Value {
  const xs = staticShape(x, "differentiate a reduction");
  const kept = xs.map((d, i) => (axes.includes(i) ? 1 : d));
  return expand(reshape(dy, kept), xs);
}

function reductionAxes(node: Node): number[] {
  const x = ins(node)[0];
  const given = node.inputs[1] ? constInts(node.inputs[1], "reduction axes") : [];
  return given.length
    ? given.map((a) => (a < 0 ? a + x.shape.length : a))
    : x.shape.map((_, i) => i);
}

function sliceGrad({ node, dy }: GradArgs): (Value | null)[] {
  const [x] = ins(node);
  const xs = staticShape(x, "differentiate Slice");
  const starts = constInts(node.inputs[1], "Slice starts");
  const ends = constInts(node.inputs[2], "Slice ends");
  const axes = constInts(node.inputs[3], "Slice axes");
  const r = xs.length;
  const pads = new Array(2 * r).fill(0);
  axes.forEach((a, i) => {
    const [s, e] = sliceBounds(xs[a], starts[i], ends[i]);
    pads[a] = s;
    pads[a + r] = xs[a] - e;
  });
  return [pad(dy, pads), null, null, null];
}

function padGrad({ node, dy }: GradArgs): (Value | null)[] {
  const [x] = ins(node);
  const pads = constInts(node.inputs[1], "Pad pads");
  const r = x.shape.length;
  const xs = staticShape(x, "differentiate Pad");
  const axes = xs.map((_, i) => i);
  return [slice(dy, pads.slice(0, r), xs.map((d, i) => pads[i] + d), axes), null, null];
}

function reshapeBack({ node, dy }: GradArgs): (Value | null)[] {
  return [reshape(dy, staticShape(ins(node)[0], "differentiate a reshape")), null];
}

/** The rules of the primitives. `Record<PrimitiveOp, …>`: one without a rule does not compile. */
const PRIMITIVE_RULES: Record<PrimitiveOp, GradRule> = {
  Add: ({ dy }) => [dy, dy],
  Sub: ({ dy, needs }) => [dy, needs[1] ? neg(dy) : null],
  Mul: ({ node, dy, needs }) => {
    const [a, b] = ins(node);
    return [needs[0] ? mul(dy, b) : null, needs[1] ? mul(dy, a) : null];
  },
  Div: ({ node, dy, needs }) => {
    const [, b] = ins(node);
    const y = node.outputs[0];
    // d(a/b)/db = −a/b² = −y/b
    return [needs[0] ? div(dy, b) : null, needs[1] ? neg(div(mul(dy, y), b)) : null];
  },
  Pow: ({ node, dy, needs }) => {
    const [a, b] = ins(node);
    const y = node.outputs[0];
    // d(a^b)/da = b·a^(b−1) = b·y/a;  d(a^b)/db = y·ln a
    return [
      needs[0] ? mul(dy, div(mul(b, y), a)) : null,
      needs[1] ? mul(dy, mul(y, log(a))) : null,
    ];
  },
  Max: ({ node, dy, needs }) => {
    const [a, b] = ins(node);
    const aWins = less(b, a); // NOTE: ties send the gradient to b
    return [needs[0] ? where(aWins, dy, 0) : null, needs[1] ? where(aWins, 0, dy) : null];
  },
  Min: ({ node, dy, needs }) => {
    const [a, b] = ins(node);
    const aWins = less(a, b);
    return [needs[0] ? where(aWins, dy, 0) : null, needs[1] ? where(aWins, 0, dy) : null];
  },
  Neg: ({ dy }) => [neg(dy)],
  Exp: ({ node, dy }) => [mul(dy, node.outputs[0])],
  Log: ({ node, dy }) => [div(dy, ins(node)[0])],
  Sqrt: ({ node, dy }) => [div(mul(dy, 0.5), node.outputs[0])],
  // d erf(x)/dx = 2/√π · e^(−x²)
  Erf: ({ node, dy }) => {
    const x = ins(node)[0];
    return [mul(dy, mul(exp(neg(mul(x, x))), 2 / Math.sqrt(Math.PI)))];
  },
  Tanh: ({ node, dy }) => {
    const y = node.outputs[0];
    return [mul(dy, sub(1, mul(y, y)))];
  },
  // softplus' = σ
  Softplus: ({ node, dy }) => [mul(dy, sigmoid(ins(node)[0]))],
  Sigmoid: ({ node, dy }) => {
    const y = node.outputs[0];
    return [mul(dy, mul(y, sub(1, y)))];
  },
  Relu: ({ node, dy }) => [where(greater(ins(node)[0], 0), dy, 0)],
  // GELU'(x) = Φ(x) + x·φ(x), Φ(x) = ½(1 + erf(x/√2)), φ(x) = e^(−x²/2)/√(2π)
  Gelu: ({ node, dy }) => [geluGrad(dy, ins(node)[0])],
  Identity: ({ dy }) => [dy],
  Cast: ({ node, dy }) => {
    const x = ins(node)[0];
    return [x.dtype === dy.dtype ? dy : cast(dy, x.dtype)];
  },
  MatMul: matMulGrad,
  FusedMatMul: fusedMatMulGrad,
  Gather: gatherGrad,
  Reshape: reshapeBack,
  Unsqueeze: reshapeBack,
  Squeeze: reshapeBack,
  Transpose: ({ node, dy }) => {
    const perm = node.attrs.perm as number[];
    const inv = perm.map((_, i) => perm.indexOf(i));
    return [transpose(dy, inv)];
  },
  Slice: sliceGrad,
  Concat: ({ node, dy }) => {
    const axis = node.attrs.axis as number;
    const sizes = ins(node).map((x) => staticShape(x, "differentiate Concat")[axis]);
    return split(dy, sizes, axis);
  },
  Split: ({ node, dys }) => {
    const parts = node.outputs.map((o, i) => dys[i] ?? zerosLike(o));
    return [concat(parts, node.attrs.axis as number), null];
  },
  Pad: padGrad,
  // The driver's unbroadcast sums dY over the expanded dims.
  Expand: ({ dy }) => [dy, null],
  ReduceSum: ({ node, dy }) => [unreduce(dy, ins(node)[0], reductionAxes(node)), null],
  ReduceMean: ({ node, dy }) => {
    const x = ins(node)[0];
    const axes = reductionAxes(node);
    const xs = staticShape(x, "differentiate ReduceMean");
    const count = axes.reduce((n, a) => n * xs[a], 1);
    return [unreduce(mul(dy, 1 / count), x, axes), null];
  },
  ReduceMax: ({ node, dy }) => {
    const x = ins(node)[0];
    const axes = reductionAxes(node);
    const xs = staticShape(x, "differentiate ReduceMax");
    const kept = xs.map((d, i) => (axes.includes(i) ? 1 : d));
    const y = reshape(node.outputs[0], kept);
    // NOTE: every tied maximum receives the full gradient (as ORT's and PyTorch's amax do not).
    return [where(equal(x, y), unreduce(dy, x, axes), 0), null];
  },
  // dx = y ⊙ (dy − Σ_axis dy ⊙ y)
  Softmax: ({ node, dy }) => {
    const y = node.outputs[0];
    const axis = node.attrs.axis as number;
    return [mul(y, sub(dy, reduceSum(mul(dy, y), [axis], { keepdims: true })))];
  },
  // dx = dy − softmax(x) ⊙ Σ_axis dy
  LogSoftmax: ({ node, dy }) => {
    const y = node.outputs[0];
    const axis = node.attrs.axis as number;
    return [sub(dy, mul(exp(y), reduceSum(dy, [axis], { keepdims: true })))];
  },
  Where: ({ node, dy, needs }) => {
    const [cond] = ins(node);
    return [null, needs[1] ? where(cond, dy, 0) : null, needs[2] ? where(cond, 0, dy) : null];
  },
  ArgMax: notDifferentiable("ArgMax"),
  Equal: notDifferentiable("Equal"),
  Less: notDifferentiable("Less"),
  Greater: notDifferentiable("Greater"),
  Shape: notDifferentiable("Shape"),
  ConstantOfShape: notDifferentiable("ConstantOfShape"),
  NonZero: notDifferentiable("NonZero"),
  Scan: notDifferentiable("Scan"),
  // x̂ = (x − μ)·r with r = 1/√(σ² + ε) (both node outputs), g = dy·γ:
  // dx = r·(g − mean(g) − x̂·mean(g·x̂)); dγ = Σ_rows dy·x̂, dβ = Σ_rows dy.
  LayerNormalization: (args) => layerNormGradients(args, args.node.attrs.axis as number),
};

/**
 * The gradient table: the primitives' rules and each custom op's (`onnx/custom/registry.ts`), one
 * rule per op.
 */
export const GRADIENTS: Readonly<Record<PrimitiveOp | CustomOpName, GradRule>> = {
  ...PRIMITIVE_RULES,
  ...Object.fromEntries(CUSTOM_OPS.map((op) => [op.name, op.gradient])) as Record<
    CustomOpName,
    GradRule
  >,
};

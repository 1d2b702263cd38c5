/**
 * The convolution family: `Conv1dIm2col`, the dilated CNN's "same"-length 1-D convolution in
 * channel-last layout as im2col + MatMul (`PLATFORM.md`: the fastest form in ORT on CPU). One op,
 * not a composition, so that its gradient can be a convolution too: differentiating the
 * composition would scatter the window gradient back with a second, larger GEMM. No native
 * kernel: its definition is what runs on every engine.
 * @module
 */
import { staticShape, type Value } from "../graph.ts";
import { add, gather, matMul, padTo, reduceSum, reshape, reshapeTo, transpose } from "../ops.ts";
import { type CustomOp, emitCustomOp, traceFunction, traceInputs } from "./kit.ts";

/** Options of {@linkcode conv1dIm2col}. */
export interface Conv1dOptions {
  kernel: number;
  dilation?: number;
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

/**
 * `Conv1dIm2col(X, W, B, Idx, Pads, ColsShape, OutShape) → (Y, Cols)`: X [B, L, C_in]; W
 * [k·C_in, C_out]; B [C_out]; Idx int64 [L, k], the window positions in X padded by Pads (int64,
 * `Pad` layout); ColsShape = [B·L, k·C_in]; OutShape = [B, L, C_out]. Cols, the im2col matrix,
 * is an output so the weight gradient reuses it. The layer's kernel and dilation are inputs (not
 * constants of the definition), so every layer shares one definition.
 */
export const CONV1D_IM2COL: CustomOp<"Conv1dIm2col"> = {
  name: "Conv1dIm2col",
  inputs: ["X", "W", "B", "Idx", "Pads", "ColsShape", "OutShape"],
  outputs: ["Y", "Cols"],
  // y = conv(x, W) + b. dx is the convolution of dy with the kernel flipped in time and
  // transposed in channels (same dilation and padding): W'[j·C_out + o, i] = W[(k−1−j)·C_in + i, o].
  // dW = colsᵀ·dy reuses the forward im2col matrix; db = Σ dy.
  gradient: ({ node, dy, dys, needs }) => {
    if (dys[1]) throw new TypeError("Cannot differentiate through Conv1dIm2col's Cols output");
    const [x, w] = node.inputs as Value[];
    const k = node.attrs.kernel as number;
    const dilation = node.attrs.dilation as number;
    const [, cin] = staticShape(x, "differentiate Conv1dIm2col").slice(1);
    const [batch, length, cout] = staticShape(dy, "differentiate Conv1dIm2col");
    let dx: Value | null = null;
    if (needs[0]) {
      const g = w.graph;
      const reversed = g.constant(
        Array.from({ length: k }, (_, j) => k - 1 - j),
        [k],
        "int64",
      );
      const taps = gather(reshape(w, [k, cin, cout]), reversed, { axis: 0 }); // [k, C_in, C_out]
      const flipped = reshape(transpose(taps, [0, 2, 1]), [k * cout, cin]);
      dx = conv1dIm2col(dy, flipped, g.scalar(0, dy.dtype), { kernel: k, dilation })[0];
    }
    const dy2 = needs[1] || needs[2] ? reshape(dy, [batch * length, cout]) : null;
    return [
      dx,
      needs[1] ? matMul(transpose(node.outputs[1]), dy2!) : null,
      needs[2] ? reduceSum(dy2!, [0]) : null,
      null,
      null,
      null,
      null,
    ];
  },
  gradCheck: [{
    dtype: "float64",
    inputs: [{ shape: [2, 7, 3] }, { shape: [3 * 3, 2] }, { shape: [2] }],
    build: ([x, w, b]) => conv1dIm2col(x, w, b, { kernel: 3, dilation: 2 })[0],
  }],
};

/**
 * A "same"-length 1-D convolution in channel-last layout: x [B, L, C_in]; w [kernel·C_in, C_out]
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
  const inputs = [
    x,
    w,
    b,
    g.constant(im2colIndex(length, k, d), [length, k], "int64"),
    g.ints([0, p, 0, 0, p, 0]),
    g.ints([batch * length, k * cin]),
    g.ints([batch, length, cout]),
  ];
  const definition = traceFunction(
    CONV1D_IM2COL.name,
    traceInputs(CONV1D_IM2COL, inputs, [
      ["B", "L", "Cin"],
      ["kCin", "Cout"],
      b.shape.length === 0 ? [] : ["Cout"],
      ["L", "k"],
      [6],
      [2],
      [3],
    ]),
    CONV1D_IM2COL.outputs,
    ([X, W, B, Idx, Pads, ColsShape, OutShape]) => {
      const windows = gather(padTo(X, Pads, ["B", "Lp", "Cin"]), Idx, { axis: 1 }); // [B, L, k, Cin]
      const cols = reshapeTo(windows, ColsShape, ["BL", "kCin"]);
      const y = reshapeTo(add(matMul(cols, W), B), OutShape, ["B", "L", "Cout"]);
      return [y, cols];
    },
  );
  const [y, cols] = emitCustomOp(
    CONV1D_IM2COL,
    definition,
    inputs,
    [{ dtype: x.dtype, shape: [batch, length, cout] }, {
      dtype: x.dtype,
      shape: [batch * length, k * cin],
    }],
    { kernel: k, dilation: d },
  );
  return [y, cols];
}

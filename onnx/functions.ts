/**
 * Custom-domain ops and their portable definitions: each is a model-local ONNX function
 * (FunctionProto), which any ONNX Runtime inlines and runs. Native kernels may replace a
 * definition where the runtime can load them; the definition here stays the reference.
 * @module
 */
import type { FunctionData } from "./proto.ts";

/** The ONNX domain of claimbench's own ops. */
export const CUSTOM_DOMAIN = "ai.claimbench";

/**
 * `Conv1dIm2col(X, W, B, Idx, Pads, ColsShape, OutShape) → (Y, Cols)`: a "same"-length 1-D
 * convolution in channel-last layout as im2col + MatMul (PLATFORM.md: the fastest form in ORT on
 * CPU). X [B, L, C_in]; W [k·C_in, C_out]; B [C_out]; Idx int64 [L, k], the window positions in X
 * padded by Pads (int64, `Pad` layout); ColsShape = [B·L, k·C_in]; OutShape = [B, L, C_out].
 * Cols, the im2col matrix, is an output so the weight gradient reuses it.
 *
 * It is one op, not a composition, so that its gradient can be a convolution too (see the rule
 * in `onnx/gradients.ts`): differentiating the composition would scatter the window gradient
 * back with a second, larger GEMM.
 */
export const CONV1D_IM2COL: FunctionData = {
  name: "Conv1dIm2col",
  domain: CUSTOM_DOMAIN,
  inputs: ["X", "W", "B", "Idx", "Pads", "ColsShape", "OutShape"],
  outputs: ["Y", "Cols"],
  opsets: { "": 21 },
  nodes: [
    {
      opType: "Pad",
      inputs: ["X", "Pads"],
      outputs: ["Xp"],
      attributes: { mode: { kind: "string", value: "constant" } },
    },
    {
      opType: "Gather",
      inputs: ["Xp", "Idx"],
      outputs: ["Win"],
      attributes: { axis: { kind: "int", value: 1 } },
    },
    { opType: "Reshape", inputs: ["Win", "ColsShape"], outputs: ["Cols"] },
    { opType: "MatMul", inputs: ["Cols", "W"], outputs: ["Lin"] },
    { opType: "Add", inputs: ["Lin", "B"], outputs: ["Biased"] },
    { opType: "Reshape", inputs: ["Biased", "OutShape"], outputs: ["Y"] },
  ],
};

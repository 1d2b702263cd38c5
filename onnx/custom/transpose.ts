/**
 * The layout family: `BatchTranspose`, each matrix of a batch transposed, the layout change
 * between a sequence model's [batch, length, channels] and the selective scan's [batch,
 * channels, length]. Native kernel: `native/kernels/transpose.cc`.
 * @module
 */
import type { Value } from "../graph.ts";
import { transpose } from "../ops.ts";
import { type CustomOp, emitCustomOp, traceFunction, traceInputs } from "./kit.ts";

/**
 * `BatchTranspose(X [B, M, N]) → Y [B, N, M]`: Transpose with perm [0, 2, 1]. A copy, so the
 * native kernel has the definition's bits. In the phone book's Mamba train step, ORT's
 * Transposes of [128, 79, 128] took 2.5–4.5 ms each (105 of ≈ 344 ms a step), the kernel's
 * tiled copy 0.46 ms; alone, on one such tensor, the two are on a par (`bench/`), so the step's
 * gain is not the copy's speed alone.
 */
export const BATCH_TRANSPOSE: CustomOp<"BatchTranspose"> = {
  name: "BatchTranspose",
  inputs: ["X"],
  outputs: ["Y"],
  gradient: ({ dy }) => [batchTranspose(dy)],
  gradCheck: [{
    dtype: "float64",
    inputs: [{ shape: [2, 3, 4] }],
    build: ([x]) => batchTranspose(x),
  }],
  // Neither dim a multiple of the kernel's 16-element tiles.
  kernel: {
    inputs: [{ shape: [3, 37, 50] }],
    build: ([x]) => [batchTranspose(x)],
    agreement: "bits",
  },
};

/** x [B, M, N] → [B, N, M]. */
export function batchTranspose(x: Value): Value {
  if (x.shape.length !== 3) {
    throw new TypeError(`Cannot apply BatchTranspose to [${x.shape}]: x must have rank 3`);
  }
  const definition = traceFunction(
    BATCH_TRANSPOSE.name,
    traceInputs(BATCH_TRANSPOSE, [x], [["B", "M", "N"]]),
    BATCH_TRANSPOSE.outputs,
    ([X]) => [transpose(X, [0, 2, 1])],
  );
  return emitCustomOp(BATCH_TRANSPOSE, definition, [x], [{
    dtype: x.dtype,
    shape: [x.shape[0], x.shape[2], x.shape[1]],
  }])[0];
}

/**
 * One AdamW train step of the copy transformer of CLAIMS.md §1.4 (J4–J6): 2 layers, d_model 64,
 * 4 heads (Hard-ALiBi windows 1, 2 and two NoPE heads), MLP 256, vocabulary 30, untied head
 * (≈104k parameters), batch 32 × context 96, masked cross-entropy, 2 threads (the target) and
 * 1 thread (the work alone: less sensitive to other processes on a shared machine), on both
 * engines: portable (onnxruntime-node; custom ops as their ONNX definitions) and native (the
 * C++ kernels of `native/claimbench_ops.cc` for the attention and its gradient, GELU's gradient,
 * LayerNorm and its gradient, the weight and bias gradients and the AdamW update). Examples/s =
 * 32 × iter/s. Reference: the same step in PyTorch 1.13, timed on the same machine by
 * `bench/pytorch_reference.py --model transformer` (README, Performance).
 *
 * `deno bench -A bench/transformer_step_bench.ts`
 * @module
 */
import { Prng } from "../fixtures/prng.ts";
import { copyTrainBatch } from "../fixtures/copy_task.ts";
import {
  hardAlibiWindows,
  type TransformerConfig,
  transformerLogits,
  transformerParams,
} from "../models/transformer.ts";
import { ADAMW_DEFAULTS } from "../onnx/optim.ts";
import { openEngine } from "../runner/engine.ts";
import { maskedStepper, maskedTrainStep } from "./masked_step.ts";

const BATCH = 32;
const CONTEXT = 96;
const THREADS = 2;
const config: TransformerConfig = {
  vocab: 30,
  dModel: 64,
  heads: 4,
  layers: 2,
  mlp: 256,
  position: "hard-alibi",
  hardAlibiWindows: hardAlibiWindows(4),
  tiedHead: false,
};

const params = transformerParams(config, new Prng(1));
const model = maskedTrainStep(
  "transformer_step",
  params,
  [BATCH, CONTEXT],
  (p, ids) => transformerLogits(config, p, ids),
  { ...ADAMW_DEFAULTS, weightDecay: 0.1 },
);
const data = copyTrainBatch(new Prng(2), {
  batch: BATCH,
  context: CONTEXT,
  minLen: 1,
  maxLen: 16,
  D: 26,
});

for (const engine of [await openEngine("portable"), await openEngine("native")]) {
  for (const threads of [THREADS, 1]) {
    const step = await maskedStepper(
      model,
      params,
      { ...data, mask: data.lossMask },
      [BATCH, CONTEXT],
      threads,
      engine,
    );
    Deno.bench({
      name: `transformer train step, ${engine.kind} (B ${BATCH}, T ${CONTEXT}, ${threads} thread${
        threads > 1 ? "s" : ""
      })`,
      group: `transformer, ${threads} thread${threads > 1 ? "s" : ""}`,
      baseline: engine.kind === "portable",
      n: 200,
      warmup: 20,
      fn: step,
    });
  }
}

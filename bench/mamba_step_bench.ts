/**
 * One train step of the `selective-copying-ssm` suite's Mamba arm (full profile): 2 Mamba blocks
 * (d_model 32, expand 2, d_state 16, d_conv 4, dt_rank 2), vocabulary 10, batch 32 × 80 (S4's
 * copying task, L 64, M 8), cross-entropy on the 8 answer tokens, Adam with clipping, 2 threads,
 * on both engines: portable (SelectiveScan as its `Scan` definition) and native (its C++
 * kernels). Reference: the same step in PyTorch 1.13 with the sequential scan a PyTorch user
 * writes, `bench/pytorch_reference.py --model mamba` (README, Performance).
 *
 * `deno bench -A bench/mamba_step_bench.ts`
 * @module
 */
import { Prng } from "../fixtures/prng.ts";
import { s4CopyingBatch } from "../fixtures/s4_copying.ts";
import { type MambaConfig, mambaLogits, mambaParams } from "../models/mamba.ts";
import { ADAMW_DEFAULTS } from "../onnx/optim.ts";
import { openEngine } from "../runner/engine.ts";
import { maskedStepper, maskedTrainStep } from "./masked_step.ts";

const BATCH = 32;
const TASK = { noise: 64, memorize: 8, vocab: 10 };
const LENGTH = TASK.noise + 2 * TASK.memorize;
const THREADS = 2;
const config: MambaConfig = { vocab: 10, dModel: 32, layers: 2, layer: "mamba", dState: 16 };

const params = mambaParams(config, new Prng(1));
const model = maskedTrainStep(
  "mamba_step",
  params,
  [BATCH, LENGTH],
  (p, ids) => mambaLogits(config, p, ids),
  { ...ADAMW_DEFAULTS, weightDecay: 0, clipNorm: 1 },
);
const data = s4CopyingBatch(new Prng(2), BATCH, TASK);

for (const engine of [await openEngine("portable"), await openEngine("native")]) {
  const step = await maskedStepper(model, params, data, [BATCH, LENGTH], THREADS, engine);
  Deno.bench({
    name: `Mamba train step, ${engine.kind} (B ${BATCH}, L ${LENGTH}, ${THREADS} threads)`,
    group: "mamba",
    baseline: engine.kind === "portable",
    n: 50,
    warmup: 5,
    fn: step,
  });
}

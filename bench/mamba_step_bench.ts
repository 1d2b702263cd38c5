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
import { crossEntropy } from "../onnx/nn.ts";
import { ADAMW_DEFAULTS, buildTrainStep } from "../onnx/optim.ts";
import { type Engine, Session, type Tensor, tensor } from "../onnx/runtime.ts";
import { advanceFeeds, initialStepState, stateFeeds } from "../onnx/step_state.ts";
import { openEngine } from "../runner/engine.ts";

const BATCH = 32;
const TASK = { noise: 64, memorize: 8, vocab: 10 };
const LENGTH = TASK.noise + 2 * TASK.memorize;
const THREADS = 2;
const config: MambaConfig = { vocab: 10, dModel: 32, layers: 2, layer: "mamba", dState: 16 };

const params = mambaParams(config, new Prng(1));
const model = buildTrainStep({
  name: "mamba_step",
  params,
  batch: [
    { name: "input", dtype: "int32", shape: [BATCH, LENGTH] },
    { name: "target", dtype: "int32", shape: [BATCH, LENGTH] },
    { name: "mask", dtype: "float32", shape: [BATCH, LENGTH] },
  ],
  loss: (p, b) => crossEntropy(mambaLogits(config, p, b.input), b.target, b.mask),
  optimizer: { ...ADAMW_DEFAULTS, weightDecay: 0, clipNorm: 1 },
}).toModel();
const data = s4CopyingBatch(new Prng(2), BATCH, TASK);

/** One session and its feeds; each step feeds the previous step's state back, as training does. */
async function stepper(engine: Engine): Promise<() => Promise<void>> {
  const session = await Session.create(model, { threads: THREADS, engine });
  const feeds: Record<string, Tensor> = {
    ...stateFeeds(initialStepState(params), params),
    input: tensor("int32", data.input, [BATCH, LENGTH]),
    target: tensor("int32", data.target, [BATCH, LENGTH]),
    mask: tensor("float32", data.mask, [BATCH, LENGTH]),
    lr: tensor("float32", Float32Array.of(1e-3), []),
  };
  let step = 0;
  return async () => {
    feeds.step = tensor("float32", Float32Array.of(++step), []);
    const out = await session.run(feeds);
    advanceFeeds(feeds, out);
  };
}

for (const engine of [await openEngine("portable"), await openEngine("native")]) {
  const step = await stepper(engine);
  Deno.bench({
    name: `Mamba train step, ${engine.kind} (B ${BATCH}, L ${LENGTH}, ${THREADS} threads)`,
    group: "mamba",
    baseline: engine.kind === "portable",
    n: 50,
    warmup: 5,
    fn: step,
  });
}

/**
 * One AdamW train step of the dilated CNN of seed 000 (6 layers, kernel 9, 64 channels,
 * dilations [1,2,3,4,5,1], 237,952 parameters) at batch 64 × 52 bytes on selective-copy data,
 * default thread count. examples/s = 64 / (time per step). Reference: the same model in PyTorch,
 * timed on the same machine by `bench/pytorch_reference.py --model cnn` (README, Performance).
 *
 * `deno task bench` (or `deno bench -A bench/train_step_bench.ts`)
 * @module
 */
import { Prng } from "../fixtures/prng.ts";
import { selectiveCopyBatch } from "../fixtures/selective_copy.ts";
import { dilatedCnnLogits, dilatedCnnParams } from "../models/dilated_cnn.ts";
import { crossEntropy } from "../onnx/nn.ts";
import { ADAMW_DEFAULTS, buildTrainStep } from "../onnx/optim.ts";
import { defaultThreads, PORTABLE_ENGINE, Session, type Tensor, tensor } from "../onnx/runtime.ts";
import { advanceFeeds, initialStepState, stateFeeds } from "../onnx/step_state.ts";

const BATCH = 64;
const LENGTH = 52;
const config = { vocab: 256, channels: 64, kernel: 9, dilations: [1, 2, 3, 4, 5, 1] };
const params = dilatedCnnParams(config, new Prng(1));
const model = buildTrainStep({
  name: "cnn_step",
  params,
  batch: [
    { name: "input", dtype: "int32", shape: [BATCH, LENGTH] },
    { name: "target", dtype: "int32", shape: [BATCH, LENGTH] },
  ],
  loss: (p, b) => crossEntropy(dilatedCnnLogits(config, p, b.input), b.target),
  optimizer: ADAMW_DEFAULTS,
}).toModel();
// The portable engine (the default), as `deno task reproduce` trains.
const session = await Session.create(model, { threads: defaultThreads(), engine: PORTABLE_ENGINE });

const feeds: Record<string, Tensor> = stateFeeds(initialStepState(params), params);
feeds.lr = tensor("float32", Float32Array.of(2e-3), []);
const prng = new Prng(2);
let step = 0;

async function trainStep(): Promise<void> {
  const b = selectiveCopyBatch(prng, BATCH);
  feeds.input = tensor("int32", b.input, [BATCH, LENGTH]);
  feeds.target = tensor("int32", b.target, [BATCH, LENGTH]);
  feeds.step = tensor("float32", Float32Array.of(++step), []);
  const out = await session.run(feeds);
  advanceFeeds(feeds, out);
}

// Train past the first steps, where logits are large and softmax outputs underflow, so the
// timed steps are typical of a run.
for (let i = 0; i < 30; i++) await trainStep();

Deno.bench({
  name: `dilated CNN train step (B ${BATCH}, L ${LENGTH}, ${defaultThreads()} threads)`,
  group: "cnn",
  baseline: true,
  fn: trainStep,
});

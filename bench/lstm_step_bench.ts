/**
 * One train step of `copy-length-generalisation`'s LSTM arm (full profile; hidden 112, 1 layer,
 * the copy vocabulary of 26 letters): batch 32 × 96 of copy-task rows (strings of 1–20 letters,
 * as the suite trains on), masked cross-entropy, AdamW with weight decay 0.1 and clipping at 1,
 * 2 threads, on both engines. The layer is unrolled over the 96 steps (`models/lstm.ts`): ORT
 * runs ≈ 4,000 nodes a step, mostly element-wise gate arithmetic and its gradient. The engines
 * differ in the custom ops among them: the weight gradients (one for W_hh per step), the masked
 * cross-entropy and AdamW.
 *
 * `deno bench -A bench/lstm_step_bench.ts`
 * @module
 */
import { copyTrainBatch, copyVocab } from "../fixtures/copy_task.ts";
import { Prng } from "../fixtures/prng.ts";
import { type LstmConfig, lstmLogits, lstmParams } from "../models/lstm.ts";
import { crossEntropy } from "../onnx/nn.ts";
import { ADAMW_DEFAULTS, buildTrainStep } from "../onnx/optim.ts";
import { type Engine, Session, type Tensor, tensor } from "../onnx/runtime.ts";
import { advanceFeeds, initialStepState, stateFeeds } from "../onnx/step_state.ts";
import { openEngine } from "../runner/engine.ts";

const THREADS = 2;
const BATCH = 32;
const CONTEXT = 96;
const ALPHABET = 26;
const config: LstmConfig = { vocab: copyVocab(ALPHABET).size, hidden: 112, layers: 1 };
const shape = [BATCH, CONTEXT];
const model = buildTrainStep({
  name: "lstm_step",
  params: lstmParams(config, new Prng(1)),
  batch: [
    { name: "input", dtype: "int32", shape },
    { name: "target", dtype: "int32", shape },
    { name: "mask", dtype: "float32", shape },
  ],
  loss: (p, b) => crossEntropy(lstmLogits(config, p, b.input), b.target, b.mask),
  optimizer: { ...ADAMW_DEFAULTS, weightDecay: 0.1, clipNorm: 1 },
}).toModel();
const rows = copyTrainBatch(new Prng(2), {
  batch: BATCH,
  context: CONTEXT,
  minLen: 1,
  maxLen: 20,
  D: ALPHABET,
});

/** One session and its feeds; each step feeds the previous step's state back, as training does. */
async function stepper(engine: Engine): Promise<() => Promise<void>> {
  const params = lstmParams(config, new Prng(1));
  const session = await Session.create(model, { threads: THREADS, engine });
  const feeds: Record<string, Tensor> = {
    ...stateFeeds(initialStepState(params), params),
    input: tensor("int32", rows.input, shape),
    target: tensor("int32", rows.target, shape),
    mask: tensor("float32", rows.lossMask, shape),
    lr: tensor("float32", Float32Array.of(1e-3), []),
  };
  let step = 0;
  return async () => {
    feeds.step = tensor("float32", Float32Array.of(++step), []);
    advanceFeeds(feeds, await session.run(feeds));
  };
}

for (const engine of [await openEngine("portable"), await openEngine("native")]) {
  const step = await stepper(engine);
  Deno.bench({
    name: `LSTM train step, ${engine.kind} (B ${BATCH}, L ${CONTEXT}, ${THREADS} threads)`,
    group: "lstm",
    baseline: engine.kind === "portable",
    n: 50,
    warmup: 5,
    fn: step,
  });
}

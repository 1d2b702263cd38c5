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
import { ADAMW_DEFAULTS } from "../onnx/optim.ts";
import { openEngine } from "../runner/engine.ts";
import { maskedStepper, maskedTrainStep } from "./masked_step.ts";

const THREADS = 2;
const BATCH = 32;
const CONTEXT = 96;
const ALPHABET = 26;
const config: LstmConfig = { vocab: copyVocab(ALPHABET).size, hidden: 112, layers: 1 };
const params = lstmParams(config, new Prng(1));
const model = maskedTrainStep(
  "lstm_step",
  params,
  [BATCH, CONTEXT],
  (p, ids) => lstmLogits(config, p, ids),
  { ...ADAMW_DEFAULTS, weightDecay: 0.1, clipNorm: 1 },
);
const rows = copyTrainBatch(new Prng(2), {
  batch: BATCH,
  context: CONTEXT,
  minLen: 1,
  maxLen: 20,
  D: ALPHABET,
});

for (const engine of [await openEngine("portable"), await openEngine("native")]) {
  const step = await maskedStepper(
    model,
    params,
    { ...rows, mask: rows.lossMask },
    [BATCH, CONTEXT],
    THREADS,
    engine,
  );
  Deno.bench({
    name: `LSTM train step, ${engine.kind} (B ${BATCH}, L ${CONTEXT}, ${THREADS} threads)`,
    group: "lstm",
    baseline: engine.kind === "portable",
    n: 50,
    warmup: 5,
    fn: step,
  });
}

/**
 * What the train-step benches share: a model's AdamW train step on masked cross-entropy over
 * rows of token ids, and a bench `fn` that runs it once a call on fixed rows, feeding each
 * step's parameters and moments back as training does.
 * @module
 */
import type { Value } from "../onnx/graph.ts";
import { crossEntropy } from "../onnx/nn.ts";
import { type AdamWConfig, buildTrainStep, type ParamSpec } from "../onnx/optim.ts";
import { type Engine, Session, type Tensor, tensor } from "../onnx/runtime.ts";
import { advanceFeeds, initialStepState, stateFeeds } from "../onnx/step_state.ts";

/** Rows of a masked language-modelling batch, each `[rows, length]`. */
export interface MaskedRows {
  input: Int32Array;
  target: Int32Array;
  /** 1 where the prediction of `target` counts in the loss. */
  mask: Float32Array;
}

/** The ONNX train step of `logits` ([rows, length, vocab] for ids) on rows of `shape`. */
export function maskedTrainStep(
  name: string,
  params: readonly ParamSpec[],
  shape: readonly [number, number],
  logits: (p: Record<string, Value>, ids: Value) => Value,
  optimizer: AdamWConfig,
): Uint8Array {
  const dims = [...shape];
  return buildTrainStep({
    name,
    params,
    batch: [
      { name: "input", dtype: "int32", shape: dims },
      { name: "target", dtype: "int32", shape: dims },
      { name: "mask", dtype: "float32", shape: dims },
    ],
    loss: (p, b) => crossEntropy(logits(p, b.input), b.target, b.mask),
    optimizer,
  }).toModel();
}

/** A session of `model` on `engine` and a function that runs its next step on `rows`. */
export async function maskedStepper(
  model: Uint8Array,
  params: readonly ParamSpec[],
  rows: MaskedRows,
  shape: readonly [number, number],
  threads: number,
  engine: Engine,
): Promise<() => Promise<void>> {
  const dims = [...shape];
  const session = await Session.create(model, { threads, engine });
  const feeds: Record<string, Tensor> = {
    ...stateFeeds(initialStepState(params), params),
    input: tensor("int32", rows.input, dims),
    target: tensor("int32", rows.target, dims),
    mask: tensor("float32", rows.mask, dims),
    lr: tensor("float32", Float32Array.of(1e-3), []),
  };
  let step = 0;
  return async () => {
    feeds.step = tensor("float32", Float32Array.of(++step), []);
    advanceFeeds(feeds, await session.run(feeds));
  };
}

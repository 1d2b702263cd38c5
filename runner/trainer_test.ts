import { assertEquals, assertLess } from "@std/assert";
import { Prng } from "../fixtures/prng.ts";
import { crossEntropy, linear } from "../onnx/nn.ts";
import { ADAMW_DEFAULTS, buildTrainStep, type ParamSpec } from "../onnx/optim.ts";
import { PORTABLE_ENGINE, tensor } from "../onnx/runtime.ts";
import { initialState, train, type TrainState } from "./trainer.ts";

// A 2-class logistic regression on a fixed, separable problem.
const params = (): ParamSpec[] => {
  const r = new Prng(5);
  return [
    {
      name: "w",
      shape: [4, 2],
      init: new Float32Array(8).map(() => r.normal() * 0.1),
      decay: true,
    },
    { name: "b", shape: [2], init: new Float32Array(2), decay: false },
  ];
};
const model = buildTrainStep({
  name: "logreg",
  params: params(),
  batch: [{ name: "x", dtype: "float32", shape: [8, 4] }, {
    name: "y",
    dtype: "int32",
    shape: [8],
  }],
  loss: (p, b) => crossEntropy(linear(b.x, p.w, p.b), b.y),
  optimizer: ADAMW_DEFAULTS,
}).toModel();

function batch(step: number) {
  const r = new Prng(1000 + step);
  const x = new Float32Array(32).map(() => r.normal());
  const y = new Int32Array(8).map((_, i) => (x[i * 4] + x[i * 4 + 1] > 0 ? 1 : 0));
  return { x: tensor("float32", x, [8, 4]), y: tensor("int32", y, [8]) };
}

const opts = {
  model,
  params: params(),
  steps: 40,
  schedule: { lr: 0.05, warmupSteps: 5, totalSteps: 40 },
  batch,
  threads: 1,
  engine: PORTABLE_ENGINE,
  logEvery: 7,
};

function snapshot(s: TrainState): string {
  const tensors = [...s.tensors].map(([k, v]) => [k, Array.from(v)]);
  return JSON.stringify({ step: s.step, tensors, losses: s.losses, window: s.window });
}

Deno.test("training lowers the loss", async () => {
  const s = await train(opts);
  assertEquals(s.step, 40);
  assertLess(s.losses.at(-1)!.loss, s.losses[0].loss * 0.6);
});

Deno.test("a run resumed from a mid-window checkpoint is bit-identical to an uninterrupted one", async () => {
  const straight = await train(opts);
  let saved: string | undefined;
  await train({
    ...opts,
    steps: 40,
    checkpointSeconds: 0,
    onCheckpoint: (s) => {
      if (s.step === 17) saved = snapshot(s); // step 17 is inside the third 7-step window
      return Promise.resolve();
    },
  });
  const parsed = JSON.parse(saved!);
  const resume: TrainState = {
    ...initialState(opts.params),
    step: parsed.step,
    tensors: new Map(
      parsed.tensors.map(([k, v]: [string, number[]]) => [k, Float32Array.from(v)]),
    ),
    losses: parsed.losses,
    window: parsed.window,
  };
  const resumed = await train({ ...opts, resume });
  assertEquals(snapshot(resumed), snapshot(straight));
});

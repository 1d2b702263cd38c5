import { assertEquals, assertLess, assertThrows } from "@std/assert";
import { Prng } from "../fixtures/prng.ts";
import { crossEntropy, linear } from "./nn.ts";
import { ADAMW_DEFAULTS, buildTrainStep, type ParamSpec } from "./optim.ts";
import { tensor } from "./runtime.ts";
import {
  advanceFeeds,
  initialState,
  stateFeeds,
  storeFeeds,
  train,
  type TrainState,
} from "./trainer.ts";

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

Deno.test("state feeds flatten p, m and v in parameter order, and store back as views", () => {
  const ps = params();
  const state = initialState(ps);
  state.tensors.set("m.b", Float32Array.of(7, 8));
  const feeds = stateFeeds(state, ps);
  assertEquals(Object.keys(feeds), ["p", "m", "v"]);
  assertEquals(feeds.p.dims, [10]);
  assertEquals(Array.from(feeds.m.data as Float32Array).slice(8), [7, 8]);
  const next = {
    "next.p": tensor("float32", new Float32Array(10).fill(1), [10]),
    "next.m": tensor("float32", new Float32Array(10).fill(2), [10]),
    "next.v": tensor("float32", new Float32Array(10).fill(3), [10]),
  };
  advanceFeeds(feeds, next);
  storeFeeds(state, feeds, ps);
  assertEquals(Array.from(state.tensors.get("v.w")!), new Array(8).fill(3));
  assertEquals(Array.from(state.tensors.get("p.b")!), [1, 1]);
  state.tensors.delete("m.w");
  assertThrows(() => stateFeeds(state, ps), RangeError, "m.w");
});

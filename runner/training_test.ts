import { assertEquals, assertNotEquals } from "@std/assert";
import { Prng } from "../fixtures/prng.ts";
import { crossEntropy, linear } from "../onnx/nn.ts";
import { ADAMW_DEFAULTS } from "../onnx/optim.ts";
import { tensor } from "../onnx/runtime.ts";
import { openEngine } from "./engine.ts";
import { cacheKey, ModelCache } from "./model_cache.ts";
import { Progress } from "./progress.ts";
import { trainCached, type TrainContext, type TrainJob } from "./training.ts";

const ENGINE = await openEngine("portable");

// A 2-class logistic regression: small enough to train in milliseconds.
function job(name: string, lr: number): TrainJob {
  const r = new Prng(3);
  const steps = 12;
  return {
    label: "logreg",
    key: { test: "training_test", name },
    spec: {
      name: "logreg",
      params: [
        { name: "w", shape: [4, 2], init: new Float32Array(8).map(() => r.normal()), decay: true },
        { name: "b", shape: [2], init: new Float32Array(2), decay: false },
      ],
      batch: [
        { name: "x", dtype: "float32", shape: [8, 4] },
        { name: "y", dtype: "int32", shape: [8] },
      ],
      loss: (p, b) => crossEntropy(linear(b.x, p.w, p.b), b.y),
      optimizer: ADAMW_DEFAULTS,
    },
    steps,
    schedule: { lr, warmupSteps: 2, totalSteps: steps },
    batch: (step) => {
      const b = new Prng(100 + step);
      const x = new Float32Array(32).map(() => b.normal());
      const y = new Int32Array(8).map((_, i) => (x[i * 4] > 0 ? 1 : 0));
      return { x: tensor("float32", x, [8, 4]), y: tensor("int32", y, [8]) };
    },
  };
}

function context(cacheDir: string, fresh: boolean, trainedThisRun?: Set<string>): TrainContext {
  return {
    engine: ENGINE,
    threads: 1,
    fresh,
    trainedThisRun,
    cacheDir,
    progress: (label, total) => new Progress(label, total, { write: () => {} }),
    log: () => {},
  };
}

Deno.test("--fresh trains each model once per run: older cache entries are ignored, this run's reused", async () => {
  const dir = await Deno.makeTempDir();
  const weights = (m: { state: { tensors: Map<string, Float32Array> } }) => [
    ...m.state.tensors.get("p.w")!,
  ];
  try {
    // An entry left by an earlier run: job A's key holding another model (trained at lr 0.5).
    const a = job("a", 0.05);
    const earlier = await trainCached(context(dir, false), job("b", 0.5));
    const key = cacheKey({ job: a.key, steps: a.steps, engine: ENGINE.version });
    await new ModelCache(dir).save(key, "final", earlier.state, { label: "earlier run" });
    const served = await trainCached(context(dir, false), a);
    assertEquals([served.cached, weights(served)], [true, weights(earlier)]);
    const run = new Set<string>();
    const retrained = await trainCached(context(dir, true, run), a);
    assertEquals(retrained.cached, false);
    assertNotEquals(weights(retrained), weights(earlier));
    // A later suite of the same run (the probe reuses the copy suite's models) loads it.
    const reused = await trainCached(context(dir, true, run), a);
    assertEquals([reused.cached, weights(reused)], [true, weights(retrained)]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

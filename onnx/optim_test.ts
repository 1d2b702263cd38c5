import { assertAlmostEquals, assertEquals, assertLess, assertThrows } from "@std/assert";
import { add, concat, mul, reduceSum, reshape, sub } from "./ops.ts";
import { sumOfSquares } from "./custom/optim.ts";
import { Graph } from "./graph.ts";
import { Prng } from "../fixtures/prng.ts";
import { buildTrainStep, flatParams, learningRate, type ParamSpec, unflatParams } from "./optim.ts";
import { Session, tensor } from "./runtime.ts";

Deno.test("learning rate: linear warm-up, cosine to the floor", () => {
  const c = { lr: 1e-3, warmupSteps: 10, totalSteps: 110, minLrRatio: 0.1 };
  assertAlmostEquals(learningRate(1, c), 1e-4);
  assertAlmostEquals(learningRate(10, c), 1e-3);
  assertAlmostEquals(learningRate(60, c), 1e-4 + 0.9e-3 * 0.5);
  assertAlmostEquals(learningRate(110, c), 1e-4);
  assertAlmostEquals(learningRate(500, c), 1e-4);
});

/** AdamW as PyTorch 1.13 implements it (torch.optim.AdamW, single tensor, no amsgrad). */
function adamwReference(
  p: number[],
  grads: (p: number[]) => number[],
  steps: number,
  o: { lr: number; b1: number; b2: number; eps: number; wd: number; clip: number },
): number[] {
  const m = p.map(() => 0);
  const v = p.map(() => 0);
  for (let t = 1; t <= steps; t++) {
    let g = grads(p);
    const norm = Math.sqrt(g.reduce((s, x) => s + x * x, 0));
    const coef = Math.min(1, o.clip / (norm + 1e-6));
    g = g.map((x) => x * coef);
    for (let i = 0; i < p.length; i++) {
      p[i] *= 1 - o.lr * o.wd;
      m[i] = o.b1 * m[i] + (1 - o.b1) * g[i];
      v[i] = o.b2 * v[i] + (1 - o.b2) * g[i] * g[i];
      const mh = m[i] / (1 - o.b1 ** t);
      const denom = Math.sqrt(v[i]) / Math.sqrt(1 - o.b2 ** t) + o.eps;
      p[i] -= (o.lr * mh) / denom;
    }
  }
  return p;
}

Deno.test("the train step graph matches a reference AdamW with clipping and decay", async () => {
  // Loss = Σ (w ⊙ x − y)², gradient 2x(w ⊙ x − y): large enough that clipping engages.
  const x = [1.5, -2, 3];
  const y = [4, 1, -6];
  const params: ParamSpec[] = [
    { name: "w", shape: [3], init: Float32Array.from([0.5, 0.1, -0.3]), decay: true },
  ];
  const o = { lr: 0.05, b1: 0.9, b2: 0.999, eps: 1e-8, wd: 0.1, clip: 1.0 };
  const g = buildTrainStep({
    name: "quad",
    params,
    batch: [{ name: "x", dtype: "float32", shape: [3] }, {
      name: "y",
      dtype: "float32",
      shape: [3],
    }],
    loss: (p, b) => {
      const r = sub(mul(p.w, b.x), b.y);
      return reduceSum(mul(r, r));
    },
    optimizer: { beta1: o.b1, beta2: o.b2, eps: o.eps, weightDecay: o.wd, clipNorm: o.clip },
  });
  const s = await Session.create(g.toModel(), { threads: 1 });
  let w = tensor("float32", params[0].init.slice(), [3]);
  let m = tensor("float32", new Float32Array(3), [3]);
  let v = tensor("float32", new Float32Array(3), [3]);
  for (let t = 1; t <= 5; t++) {
    const out = await s.run({
      p: w,
      m,
      v,
      step: tensor("float32", Float32Array.of(t), []),
      lr: tensor("float32", Float32Array.of(o.lr), []),
      x: tensor("float32", Float32Array.from(x), [3]),
      y: tensor("float32", Float32Array.from(y), [3]),
    });
    [w, m, v] = [out["next.p"], out["next.m"], out["next.v"]];
  }
  const want = adamwReference(
    [0.5, 0.1, -0.3],
    (p) => p.map((pi, i) => 2 * x[i] * (pi * x[i] - y[i])),
    5,
    o,
  );
  const got = Array.from(w.data as Float32Array);
  for (let i = 0; i < 3; i++) assertLess(Math.abs(got[i] - want[i]), 1e-5);
  await s.release();
});

Deno.test("parameters without decay are not decayed", async () => {
  // Zero gradient: only weight decay can move a parameter.
  const params: ParamSpec[] = [
    { name: "a", shape: [1], init: Float32Array.of(2), decay: true },
    { name: "b", shape: [1], init: Float32Array.of(2), decay: false },
  ];
  const g = buildTrainStep({
    name: "decay",
    params,
    batch: [],
    loss: (p) => mul(reduceSum(mul(p.a, p.b)), 0),
    optimizer: { beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.5, clipNorm: null },
  });
  const s = await Session.create(g.toModel(), { threads: 1 });
  const z = () => tensor("float32", new Float32Array(2), [2]);
  const out = await s.run({
    p: tensor("float32", Float32Array.of(2, 2), [2]),
    m: z(),
    v: z(),
    step: tensor("float32", Float32Array.of(1), []),
    lr: tensor("float32", Float32Array.of(0.1), []),
  });
  const [a, b] = out["next.p"].data as Float32Array; // [a, b]: the parameters' order
  assertAlmostEquals(a, 2 * (1 - 0.1 * 0.5), 1e-6);
  assertEquals(b, 2);
  await s.release();
});

Deno.test("flatParams and unflatParams lay parameters out in order, and check sizes", () => {
  const params = [{ name: "w", shape: [2, 2] }, { name: "b", shape: [1] }];
  const values: Record<string, Float32Array> = {
    w: Float32Array.of(1, 2, 3, 4),
    b: Float32Array.of(5),
  };
  const flat = flatParams(params, (n) => values[n]);
  assertEquals(Array.from(flat), [1, 2, 3, 4, 5]);
  const back = unflatParams(params, flat);
  assertEquals([...back.keys()], ["w", "b"]);
  assertEquals(Array.from(back.get("b")!), [5]);
  back.get("w")![0] = 9; // views, not copies
  assertEquals(flat[0], 9);
  assertThrows(() => flatParams(params, () => Float32Array.of(1)), RangeError, "shape [2,2]");
  assertThrows(() => unflatParams(params, new Float32Array(6)), RangeError, "6 values");
});

Deno.test("SumOfSquares' portable definition gives the per-tensor sums' bits", async () => {
  const prng = new Prng(8);
  // A transformer's parameter shapes, in its order: matrices, vectors, an embedding.
  const shapes = [[30, 64], [64], [64], [64, 192], [192], [64, 64], [64], [64, 256], [256], [
    256,
    64,
  ], [64]];
  const g = new Graph("sum_of_squares");
  const tensors = shapes.map((s, i) => g.input(`t${i}`, "float32", s));
  const sizes = shapes.map((s) => s.reduce((a, b) => a * b, 1));
  // The train step's norm before the op: each tensor's Σ x², added in order.
  g.output(tensors.map((x) => reduceSum(mul(x, x))).reduce((a, b) => add(a, b)), "want");
  g.output(sumOfSquares(concat(tensors.map((x, i) => reshape(x, [sizes[i]])), 0), sizes), "got");
  const s = await Session.create(g.toModel(), { threads: 2 });
  const out = await s.run(Object.fromEntries(shapes.map((shape, i) => {
    const n = sizes[i];
    return [
      `t${i}`,
      tensor("float32", Float32Array.from({ length: n }, () => prng.normal()), shape),
    ];
  })));
  await s.release();
  assertEquals(out.got.data[0], out.want.data[0]);
  assertThrows(
    () => sumOfSquares(g.input("other", "float32", [5]), [2, 3]),
    TypeError,
    "Cannot define ai.claimbench:SumOfSquares twice",
  );
  assertThrows(
    () => sumOfSquares(g.input("short", "float32", [4]), [2, 3]),
    TypeError,
    "5 elements",
  );
});

import { assertAlmostEquals, assertEquals, assertLess, assertThrows } from "@std/assert";
import { Prng } from "../fixtures/prng.ts";
import { gradCheck } from "./gradcheck.ts";
import { conv1d, crossEntropy, layerNorm, linear } from "./nn.ts";
import { Graph, type Value } from "./graph.ts";
import { gradients } from "./autodiff.ts";
import { add, div, gelu, logSoftmax, mul, neg, oneHot, reduceSum } from "./ops.ts";
import { biasGelu } from "./custom/gelu.ts";
import { Session, tensor } from "./runtime.ts";

function rng(seed: number): () => number {
  const p = new Prng(seed);
  return () => p.nextFloat();
}

Deno.test("conv1d with dilation and same padding: gradients match finite differences", async () => {
  const r = await gradCheck({
    dtype: "float64",
    inputs: [{ shape: [2, 7, 3] }, { shape: [3 * 3, 2] }, { shape: [2] }],
    build: ([x, w, b]) => conv1d(x, w, b, { kernel: 3, dilation: 2 }),
  }, rng(1));
  assertLess(r.maxError, 1e-6, JSON.stringify(r.worst));
});

Deno.test("layerNorm and linear: gradients match finite differences", async () => {
  const r = await gradCheck({
    dtype: "float64",
    inputs: [{ shape: [2, 3, 4] }, { shape: [4] }, { shape: [4] }, { shape: [4, 5] }],
    build: ([x, g, b, w]) => linear(layerNorm(x, g, b), w),
  }, rng(2));
  assertLess(r.maxError, 1e-6, JSON.stringify(r.worst));
});

Deno.test("masked cross-entropy: gradients match, value matches a direct computation", async () => {
  const targets = [2, 0, 1, 3];
  const mask = [1, 0, 1, 1];
  const r = await gradCheck({
    dtype: "float64",
    inputs: [
      { shape: [2, 2, 4] },
      { shape: [2, 2], dtype: "int32", data: targets },
      { shape: [2, 2], data: mask, differentiable: false },
    ],
    build: ([logits, t, m]) => crossEntropy(logits, t, m),
  }, rng(3));
  assertLess(r.maxError, 1e-6, JSON.stringify(r.worst));

  const g = new Graph("ce");
  const logits = g.input("logits", "float64", [2, 2, 4]);
  const t = g.input("t", "int32", [2, 2]);
  const m = g.input("m", "float64", [2, 2]);
  g.output(crossEntropy(logits, t, m), "loss");
  const s = await Session.create(g.toModel(), { threads: 1 });
  const x = Float64Array.from({ length: 16 }, (_, i) => Math.sin(i));
  const out = await s.run({
    logits: tensor("float64", x, [2, 2, 4]),
    t: tensor("int32", Int32Array.from(targets), [2, 2]),
    m: tensor("float64", Float64Array.from(mask), [2, 2]),
  });
  let sum = 0;
  for (let row = 0; row < 4; row++) {
    const z = x.slice(row * 4, row * 4 + 4);
    const lse = Math.log(z.reduce((a, v) => a + Math.exp(v), 0));
    sum += mask[row] * (lse - z[targets[row]]);
  }
  assertAlmostEquals(Number(out.loss.data[0]), sum / 3, 1e-12);
  await s.release();
});

/** The masked cross-entropy as `crossEntropy` composed it before `MaskedCrossEntropy` existed. */
function composedCrossEntropy(logits: Value, targets: Value, mask: Value): Value {
  const v = logits.shape.at(-1) as number;
  const logp = logSoftmax(logits, { axis: -1 });
  const nll = neg(
    reduceSum(mul(logp, oneHot(targets, v, logits.dtype)), [logits.shape.length - 1]),
  );
  return div(reduceSum(mul(nll, mask)), reduceSum(mask));
}

Deno.test("MaskedCrossEntropy's portable definition computes the composition's bits, gradient too", async () => {
  const prng = new Prng(4);
  // The transformer bench's logits, and a small odd shape.
  for (const dims of [[32, 96, 30], [3, 5, 7]]) {
    const rows = dims.slice(0, -1);
    const n = dims.reduce((a, b) => a * b, 1);
    const feeds = {
      logits: tensor("float32", Float32Array.from({ length: n }, () => 3 * prng.normal()), dims),
      t: tensor(
        "int32",
        Int32Array.from({ length: n / dims[2] }, () => Math.floor(prng.nextFloat() * dims[2])),
        rows,
      ),
      m: tensor(
        "float32",
        Float32Array.from({ length: n / dims[2] }, (_, i) => i % 3 ? 1 : 0),
        rows,
      ),
    };
    const outputs = [];
    for (const ce of [composedCrossEntropy, crossEntropy]) {
      const g = new Graph("ce");
      const logits = g.input("logits", "float32", dims);
      const loss = ce(logits, g.input("t", "int32", rows), g.input("m", "float32", rows));
      const [dLogits] = gradients(mul(loss, 0.37), [logits]);
      g.output(loss, "loss");
      g.output(dLogits, "dlogits");
      const s = await Session.create(g.toModel(), { threads: 2 });
      const out = await s.run(feeds);
      outputs.push(
        [out.loss.data, out.dlogits.data].map((a) => new Uint8Array((a as Float32Array).buffer)),
      );
      await s.release();
    }
    assertEquals(outputs[1][0], outputs[0][0], `loss [${dims}]`);
    const [got, want] = [outputs[1][1], outputs[0][1]];
    const first = got.findIndex((b, i) => b !== want[i]);
    assertEquals(first, -1, `dLogits [${dims}] first differ at byte ${first}`);
  }
});

Deno.test("crossEntropy with a mask names what is wrong with its inputs", () => {
  const g = new Graph("ce");
  const logits = g.input("logits", "float32", [2, 3, 4]);
  assertThrows(
    () => crossEntropy(logits, g.input("t", "int32", [2, 3]), g.input("m", "float32", [2, 4])),
    TypeError,
    "mask [2,4]",
  );
  assertThrows(
    () => crossEntropy(logits, g.input("t2", "float32", [2, 3]), g.input("m2", "float32", [2, 3])),
    TypeError,
    "targets [2,3] float32",
  );
});

Deno.test("BiasGelu's portable definition gives gelu(add(x, b))'s bits, gradients too", async () => {
  const prng = new Prng(5);
  const [rows, cols] = [3072, 256]; // the transformer bench's MLP
  const x = Float32Array.from({ length: rows * cols }, () => 2 * prng.normal());
  const b = Float32Array.from({ length: cols }, () => 0.3 * prng.normal());
  const w = Float32Array.from({ length: rows * cols }, () => prng.normal());
  const outputs: Float32Array[][] = [];
  for (const f of [(x: Value, b: Value) => gelu(add(x, b)), biasGelu]) {
    const g = new Graph("bias_gelu");
    const xi = g.input("x", "float32", [rows, cols]);
    const bi = g.input("b", "float32", [cols]);
    const y = f(xi, bi);
    // A weighted sum, so that dY differs per element.
    const loss = reduceSum(mul(y, g.input("w", "float32", [rows, cols])));
    const [dx, db] = gradients(loss, [xi, bi]);
    g.output(y, "y");
    g.output(dx, "dx");
    g.output(db, "db");
    const s = await Session.create(g.toModel(), { threads: 2 });
    const out = await s.run({
      x: tensor("float32", x, [rows, cols]),
      b: tensor("float32", b, [cols]),
      w: tensor("float32", w, [rows, cols]),
    });
    outputs.push(["y", "dx", "db"].map((k) => out[k].data as Float32Array));
    await s.release();
  }
  ["y", "dx", "db"].forEach((k, i) => {
    const [want, got] = [outputs[0][i], outputs[1][i]];
    assertEquals(got.findIndex((v, j) => !Object.is(v, want[j])), -1, `${k}: first difference`);
  });
});

import { assertAlmostEquals, assertEquals, assertLess, assertThrows } from "@std/assert";
import { Prng } from "../fixtures/prng.ts";
import { Graph, type Value } from "../onnx/graph.ts";
import { gradCheck } from "../onnx/gradcheck.ts";
import { paramInputs } from "../onnx/optim.ts";
import { Session, tensor } from "../onnx/runtime.ts";
import { type LstmConfig, lstmLogits, lstmParamCount, lstmParams, lstmStateBits } from "./lstm.ts";

Deno.test("the copy claims' GSSM-LSTM: 1 layer of 112 ≈ 101k parameters, within 15% of 98k", () => {
  const c: LstmConfig = { vocab: 30, hidden: 112, layers: 1 };
  assertEquals(lstmParamCount(c), 30 * 112 + 8 * 112 * 112 + 8 * 112);
  assertLess(Math.abs(lstmParamCount(c) - 30 * 112 - 98_000) / 98_000, 0.15);
  assertEquals(lstmStateBits(c), 32 * 2 * 112);
  assertEquals(
    lstmParams(c, new Prng(1)).reduce((n, p) => n + p.init.length, 0),
    lstmParamCount(c),
  );
  assertThrows(() => lstmParams({ ...c, hidden: 0 }, new Prng(0)), RangeError, "hidden");
});

/** A float64 LSTM from the PyTorch equations, for one row of ids. */
function reference(c: LstmConfig, p: Map<string, Float32Array>, ids: number[]): number[][] {
  const H = c.hidden;
  const sig = (v: number) => 1 / (1 + Math.exp(-v));
  let xs = ids.map((id) => Array.from(p.get("embedding")!.subarray(id * H, (id + 1) * H)));
  for (let i = 0; i < c.layers; i++) {
    const [wih, whh, bih, bhh] = ["w_ih", "w_hh", "b_ih", "b_hh"].map((n) =>
      p.get(`lstm${i}.${n}`)!
    );
    let h = new Array(H).fill(0);
    let cell = new Array(H).fill(0);
    xs = xs.map((x) => {
      const gate = (k: number) => {
        let s = bih[k] + bhh[k];
        for (let j = 0; j < H; j++) s += x[j] * wih[j * 4 * H + k] + h[j] * whh[j * 4 * H + k];
        return s;
      };
      const g = Array.from({ length: 4 * H }, (_, k) => gate(k));
      cell = cell.map((cv, j) => sig(g[H + j]) * cv + sig(g[j]) * Math.tanh(g[2 * H + j]));
      h = cell.map((cv, j) => sig(g[3 * H + j]) * Math.tanh(cv));
      return h;
    });
  }
  const emb = p.get("embedding")!;
  return xs.map((x) =>
    Array.from({ length: c.vocab }, (_, v) => x.reduce((s, xj, j) => s + xj * emb[v * H + j], 0))
  );
}

Deno.test("logits match a float64 LSTM written from PyTorch's equations", async () => {
  const c: LstmConfig = { vocab: 6, hidden: 5, layers: 2 };
  const [B, T] = [2, 4];
  const params = lstmParams(c, new Prng(3));
  const prng = new Prng(4);
  const ids = new Int32Array(B * T).map(() => prng.nextInt(c.vocab));
  const g = new Graph("lstm");
  g.output(lstmLogits(c, paramInputs(g, params), g.input("ids", "int32", [B, T])), "logits");
  const s = await Session.create(g.toModel(), { threads: 1 });
  const feeds: Record<string, ReturnType<typeof tensor>> = { ids: tensor("int32", ids, [B, T]) };
  for (const p of params) feeds[`p.${p.name}`] = tensor("float32", p.init, p.shape);
  const got = (await s.run(feeds)).logits.data as Float32Array;
  await s.release();
  const values = new Map(params.map((p) => [p.name, p.init]));
  for (let b = 0; b < B; b++) {
    const want = reference(c, values, Array.from(ids.subarray(b * T, (b + 1) * T)));
    want.forEach((row, t) =>
      row.forEach((v, o) => assertAlmostEquals(got[(b * T + t) * c.vocab + o], v, 1e-4))
    );
  }
});

Deno.test("gradients of a tiny LSTM match finite differences (float64)", async () => {
  const c: LstmConfig = { vocab: 5, hidden: 3, layers: 1 };
  const params = lstmParams(c, new Prng(5));
  const prng = new Prng(6);
  const ids = new Int32Array(4).map(() => prng.nextInt(c.vocab));
  const r = await gradCheck({
    dtype: "float64",
    inputs: params.map((p) => ({ shape: p.shape, data: Array.from(p.init) })),
    build: (xs: Value[]) => {
      const p = Object.fromEntries(params.map((s, i) => [s.name, xs[i]]));
      return lstmLogits(c, p, xs[0].graph.constant(ids, [1, 4], "int32"));
    },
  }, () => prng.nextFloat());
  assertLess(r.maxError, 1e-6, JSON.stringify(r.worst));
});

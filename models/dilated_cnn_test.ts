import { assertAlmostEquals, assertEquals, assertLess, assertThrows } from "@std/assert";
import { Prng } from "../fixtures/prng.ts";
import { Graph } from "../onnx/graph.ts";
import { paramInputs } from "../onnx/optim.ts";
import { Session, tensor } from "../onnx/runtime.ts";
import {
  dilatedCnnLogits,
  dilatedCnnParamCount,
  dilatedCnnParams,
  receptiveField,
} from "./dilated_cnn.ts";

const cfg = (layers: number, kernel: number, d: number | number[] = 1) => ({
  vocab: 256,
  channels: 64,
  kernel,
  dilations: typeof d === "number" ? new Array(layers).fill(d) : d,
});

Deno.test("parameter counts equal the seed table", () => {
  assertEquals(dilatedCnnParamCount(cfg(6, 9)), 237_952);
  assertEquals(dilatedCnnParamCount(cfg(12, 9)), 459_520);
  assertEquals(dilatedCnnParamCount(cfg(6, 17)), 434_560);
  // The generated parameters hold exactly that many numbers.
  const params = dilatedCnnParams(cfg(6, 9), new Prng(1));
  assertEquals(params.reduce((n, p) => n + p.init.length, 0), 237_952);
});

Deno.test("receptive fields match CLAIMS.md §2.2", () => {
  assertEquals(receptiveField(cfg(6, 9)).radius, 24);
  assertEquals(receptiveField(cfg(12, 9)).radius, 48);
  assertEquals(receptiveField(cfg(6, 15)).radius, 42);
  assertEquals(receptiveField(cfg(6, 9, [1, 2, 3, 4, 5, 1])), { radius: 64, contiguous: 64 });
  assertEquals(receptiveField(cfg(6, 9, 2)), { radius: 48, contiguous: 0 });
  assertEquals(receptiveField(cfg(6, 9, [2, 2, 2, 2, 2, 1])).contiguous, 44);
  assertEquals(receptiveField(cfg(6, 9, [3, 5, 7, 9, 11, 1])).radius, 144);
});

Deno.test("config errors name the field and value", () => {
  assertThrows(
    () => dilatedCnnParams({ ...cfg(6, 9), kernel: 8 }, new Prng(0)),
    RangeError,
    "kernel must be odd: current value is 8",
  );
  assertThrows(
    () => dilatedCnnParams({ ...cfg(2, 3), dilations: [1, 0] }, new Prng(0)),
    RangeError,
    "dilations[1]",
  );
});

/** Plain float64 reference of the same network, written from the PyTorch definition. */
function reference(
  c: ReturnType<typeof cfg>,
  p: Map<string, Float32Array>,
  ids: number[],
): Float64Array {
  const L = ids.length;
  const C = c.channels;
  const k = c.kernel;
  const E = p.get("embedding")!;
  let x = ids.map((t) => Array.from({ length: C }, (_, ch) => E[t * C + ch]));
  c.dilations.forEach((d, layer) => {
    const w = p.get(`conv${layer}.w`)!;
    const b = p.get(`conv${layer}.b`)!;
    const half = (k - 1) / 2;
    x = x.map((row, t) =>
      row.map((v, o) => {
        let s = b[o];
        for (let j = 0; j < k; j++) {
          const src = t + (j - half) * d;
          if (src < 0 || src >= L) continue;
          for (let i = 0; i < C; i++) s += x[src][i] * w[(j * C + i) * C + o];
        }
        return v + s * phi(s); // GELU(s) = s·Φ(s), then the residual
      })
    );
  });
  const out = new Float64Array(L * c.vocab);
  for (let t = 0; t < L; t++) {
    for (let v = 0; v < c.vocab; v++) {
      let s = 0;
      for (let i = 0; i < C; i++) s += x[t][i] * E[v * C + i];
      out[t * c.vocab + v] = s;
    }
  }
  return out;
}

/** Standard normal CDF by Simpson integration (error < 1e-10 for |s| < 10). */
function phi(s: number): number {
  const n = 2000;
  const a = 0;
  const h = (s - a) / n;
  let sum = 0;
  for (let i = 0; i <= n; i++) {
    const x = a + i * h;
    const f = Math.exp(-x * x / 2) / Math.sqrt(2 * Math.PI);
    sum += f * (i === 0 || i === n ? 1 : i % 2 ? 4 : 2);
  }
  return 0.5 + (sum * h) / 3;
}

Deno.test("ONNX logits match a plain reference convolution (dilations, padding)", async () => {
  const c = { vocab: 256, channels: 4, kernel: 3, dilations: [1, 3, 2] };
  const params = dilatedCnnParams(c, new Prng(7));
  const ids = [65, 32, 32, 66, 58, 0, 0, 12, 200];
  const g = new Graph("cnn");
  const p = paramInputs(g, params);
  const input = g.input("input", "int32", [1, ids.length]);
  g.output(dilatedCnnLogits(c, p, input), "logits");
  const s = await Session.create(g.toModel(), { threads: 1 });
  const feeds: Record<string, ReturnType<typeof tensor>> = {
    input: tensor("int32", Int32Array.from(ids), [1, ids.length]),
  };
  for (const q of params) feeds[`p.${q.name}`] = tensor("float32", q.init, q.shape);
  const got = (await s.run(feeds)).logits.data as Float32Array;
  const want = reference(c, new Map(params.map((q) => [q.name, q.init])), ids);
  let worst = 0;
  for (let i = 0; i < want.length; i++) {
    worst = Math.max(worst, Math.abs(got[i] - want[i]) / (1 + Math.abs(want[i])));
  }
  assertLess(worst, 1e-5);
  assertAlmostEquals(got[0], want[0], 1e-4);
  await s.release();
});

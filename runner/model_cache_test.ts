import { assertEquals, assertThrows } from "@std/assert";
import { initialState } from "./trainer.ts";
import { cacheKey, canonicalJson, decodeState, encodeState, ModelCache } from "./model_cache.ts";

function sample() {
  const s = initialState([
    { name: "w", shape: [2, 3], init: Float32Array.from([1, 2, 3, 4, 5, 6]), decay: true },
  ]);
  s.step = 12;
  s.losses.push({ step: 10, loss: 0.5 });
  s.evals.push({ step: 12, metrics: { err: 0.25 } });
  s.window = { sum: 1.5, count: 2 };
  return s;
}

Deno.test("train states round-trip through their encoding", () => {
  const s = sample();
  const { state, meta } = decodeState(encodeState(s, { label: "x" }));
  assertEquals(meta, { label: "x" });
  assertEquals(state, s);
});

Deno.test("a truncated or foreign file is rejected, not half-read", () => {
  const bytes = encodeState(sample(), null);
  assertThrows(() => decodeState(bytes.subarray(0, bytes.length - 4)), TypeError, "truncated");
  assertThrows(() => decodeState(new TextEncoder().encode("hello")), TypeError, "magic");
});

Deno.test("cache keys ignore key order and change with any value", () => {
  assertEquals(canonicalJson({ b: 1, a: [2, { d: 3, c: 4 }] }), '{"a":[2,{"c":4,"d":3}],"b":1}');
  assertEquals(cacheKey({ a: 1, b: 2 }), cacheKey({ b: 2, a: 1 }));
  if (cacheKey({ a: 1 }) === cacheKey({ a: 2 })) throw new Error("keys collide");
});

Deno.test("the cache stores, loads and removes entries, leaving no temp files", async () => {
  const dir = await Deno.makeTempDir();
  const cache = new ModelCache(`${dir}/models`);
  assertEquals(cache.load("k"), undefined);
  await cache.save("k", "checkpoint", sample(), null);
  assertEquals(cache.load("k", "checkpoint"), sample());
  assertEquals(cache.load("k"), undefined);
  await cache.remove("k", "checkpoint");
  assertEquals(cache.load("k", "checkpoint"), undefined);
  assertEquals([...Deno.readDirSync(`${dir}/models`)].length, 0);
  await Deno.remove(dir, { recursive: true });
});

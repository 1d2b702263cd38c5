import { assertEquals, assertRejects } from "@std/assert";
import { createHash } from "node:crypto";
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

Deno.test("an entry is format 2 and ends with the SHA-256 of all its other bytes", () => {
  const bytes = encodeState(sample(), { label: "x" });
  assertEquals(new TextDecoder().decode(bytes.subarray(0, 19)), "claimbench-state/2\n");
  const body = bytes.subarray(0, bytes.length - 32);
  const digest = new Uint8Array(createHash("sha256").update(body).digest());
  assertEquals(bytes.subarray(bytes.length - 32), digest);
});

Deno.test("cache keys ignore key order and change with any value", () => {
  assertEquals(canonicalJson({ b: 1, a: [2, { d: 3, c: 4 }] }), '{"a":[2,{"c":4,"d":3}],"b":1}');
  assertEquals(cacheKey({ a: 1, b: 2 }), cacheKey({ b: 2, a: 1 }));
  if (cacheKey({ a: 1 }) === cacheKey({ a: 2 })) throw new Error("keys collide");
});

Deno.test("the cache stores, loads and removes entries, leaving no temp files", async () => {
  const dir = await Deno.makeTempDir();
  const warnings: string[] = [];
  const warn = (m: string) => warnings.push(m);
  const cache = new ModelCache(`${dir}/models`);
  assertEquals(cache.load("k", "final", warn), undefined);
  await cache.save("k", "checkpoint", sample(), null);
  assertEquals(cache.load("k", "checkpoint", warn), sample());
  assertEquals(cache.load("k", "final", warn), undefined);
  await cache.remove("k", "checkpoint");
  assertEquals(cache.load("k", "checkpoint", warn), undefined);
  assertEquals([...Deno.readDirSync(`${dir}/models`)].length, 0);
  assertEquals(warnings, []);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("a failure to write an entry is an error", async () => {
  const dir = await Deno.makeTempDir();
  try {
    Deno.writeTextFileSync(`${dir}/file`, "not a folder");
    const cache = new ModelCache(`${dir}/file/models`);
    await assertRejects(() => cache.save("k", "final", sample(), null));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

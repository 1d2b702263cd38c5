import { assertEquals, assertRejects } from "@std/assert";
import { forwardSession } from "./inference.ts";
import { add, matMul } from "./ops.ts";
import { PORTABLE_ENGINE, tensor } from "./runtime.ts";
import type { Value } from "./graph.ts";

const spec = {
  name: "affine",
  params: [{ name: "w", shape: [2, 2] }, { name: "b", shape: [2] }],
  inputs: [{ name: "x", dtype: "float32" as const, shape: [1, 2] }],
  outputs: (p: Record<string, Value>, x: Record<string, Value>) => ({
    y: add(matMul(x.x, p.w), p.b),
  }),
  threads: 1,
  engine: PORTABLE_ENGINE,
};

Deno.test("forwardSession feeds trained values as parameter inputs", async () => {
  const s = await forwardSession(spec);
  const values = new Map([["w", Float32Array.of(1, 2, 3, 4)], ["b", Float32Array.of(0.5, -1)]]);
  const out = await s.run(values, { x: tensor("float32", Float32Array.of(1, 1), [1, 2]) });
  assertEquals(Array.from(out.y.data as Float32Array), [4.5, 5]); // [1+3+0.5, 2+4−1]
  // The same session serves other values (another seed or checkpoint).
  values.set("b", Float32Array.of(0, 0));
  const again = await s.run(values, { x: tensor("float32", Float32Array.of(1, 0), [1, 2]) });
  assertEquals(Array.from(again.y.data as Float32Array), [1, 2]);
});

Deno.test("forwardSession names a parameter without a value", async () => {
  const s = await forwardSession(spec);
  await assertRejects(
    () =>
      s.run(new Map([["w", new Float32Array(4)]]), {
        x: tensor("float32", new Float32Array(2), [1, 2]),
      }),
    TypeError,
    "parameter b has no value",
  );
});

import { assertEquals, assertThrows } from "@std/assert";
import { Graph } from "./graph.ts";
import { add, identity, mul, scan } from "./ops.ts";
import { Session, tensor } from "./runtime.ts";

Deno.test("scan runs a body per step: running sums forwards and backwards, and a carried constant", async () => {
  const g = new Graph("scan");
  const x = g.input("x", "float32", [2, 4]); // [rows, steps]
  const scale = g.input("scale", "float32", [2]);
  const [total, , forward, backward] = scan(
    [g.constant([0, 0], [2]), scale],
    [{ value: x, axis: 1 }, { value: x, axis: 1, reverse: true }],
    [{ axis: 1 }, { axis: 1, reverse: true }],
    4,
    ([sum, s], [xf, xb]) => {
      const next = add(sum, xf);
      // The backward output uses the forward sum of the mirrored step: a check of alignment.
      return { states: [next, identity(s)], outputs: [mul(next, s), add(xb, 0)] };
    },
  );
  assertEquals(forward.shape, [2, 4]);
  g.output(total, "total");
  g.output(forward, "forward");
  g.output(backward, "backward");
  const s = await Session.create(g.toModel(), { threads: 1 });
  const out = await s.run({
    x: tensor("float32", Float32Array.of(1, 2, 3, 4, 10, 20, 30, 40), [2, 4]),
    scale: tensor("float32", Float32Array.of(1, -1), [2]),
  });
  await s.release();
  assertEquals([...out.total.data as Float32Array], [10, 100]);
  assertEquals([...out.forward.data as Float32Array], [1, 3, 6, 10, -10, -30, -60, -100]);
  // Read from the end and stacked from the end: the input itself.
  assertEquals([...out.backward.data as Float32Array], [1, 2, 3, 4, 10, 20, 30, 40]);
});

Deno.test("scan refuses a body that returns the wrong number of states", () => {
  const g = new Graph("scan");
  const x = g.input("x", "float32", [3]);
  assertThrows(
    () => scan([x], [], [], 2, ([s]) => ({ states: [s, s], outputs: [] })),
    TypeError,
    "returns 2 states and 0 outputs for 1 and 0",
  );
});

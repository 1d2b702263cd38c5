import { assert, assertAlmostEquals, assertEquals, assertThrows } from "@std/assert";
import { alibiBias, alibiSlopes, causalBias, hardAlibiBias, MASKED } from "./attention_bias.ts";

/** Rows of a `[T, T]` bias as 0/1 "visible" matrices (1 where the bias is not MASKED). */
function visible(bias: Float32Array, T: number): number[][] {
  return Array.from(
    { length: T },
    (_, i) => Array.from({ length: T }, (_, j) => (bias[i * T + j] === MASKED ? 0 : 1)),
  );
}

Deno.test("causalBias() keeps exactly the keys j ≤ i", () => {
  const T = 4;
  assertEquals(visible(causalBias(T), T), [
    [1, 0, 0, 0],
    [1, 1, 0, 0],
    [1, 1, 1, 0],
    [1, 1, 1, 1],
  ]);
  for (const v of causalBias(T)) assert(v === 0 || v === MASKED);
});

Deno.test("hardAlibiBias() keeps the last `window` positions, i − m < j ≤ i", () => {
  const T = 5;
  assertEquals(visible(hardAlibiBias(T, 1), T), [
    [1, 0, 0, 0, 0],
    [0, 1, 0, 0, 0],
    [0, 0, 1, 0, 0],
    [0, 0, 0, 1, 0],
    [0, 0, 0, 0, 1],
  ]);
  assertEquals(visible(hardAlibiBias(T, 3), T), [
    [1, 0, 0, 0, 0],
    [1, 1, 0, 0, 0],
    [1, 1, 1, 0, 0],
    [0, 1, 1, 1, 0],
    [0, 0, 1, 1, 1],
  ]);
  for (const T2 of [1, 3, 7]) {
    for (let m = 1; m <= 9; m++) {
      const b = hardAlibiBias(T2, m);
      for (let i = 0; i < T2; i++) {
        for (let j = 0; j < T2; j++) {
          const want = j <= i && j > i - m ? 0 : MASKED;
          assertEquals(b[i * T2 + j], want, `T ${T2} m ${m} (${i}, ${j})`);
        }
      }
    }
  }
  // A window as long as the sequence, and no window, are both the causal mask.
  assertEquals(hardAlibiBias(6, 6), causalBias(6));
  assertEquals(hardAlibiBias(6, null), causalBias(6));
});

Deno.test("MASKED removes a key from a float32 softmax", () => {
  const scores = new Float32Array([3, 2 + MASKED]);
  const m = Math.max(...scores);
  const e = Array.from(scores, (s) => Math.fround(Math.exp(Math.fround(s - m))));
  assertEquals(e[1], 0);
});

Deno.test("alibiSlopes() is 2^(−8(h+1)/H)", () => {
  assertEquals(alibiSlopes(1), [2 ** -8]);
  const s8 = alibiSlopes(8);
  assertEquals(s8, [1 / 2, 1 / 4, 1 / 8, 1 / 16, 1 / 32, 1 / 64, 1 / 128, 1 / 256]);
  const s3 = alibiSlopes(3);
  assertAlmostEquals(s3[0], 2 ** (-8 / 3), 1e-15);
  assertAlmostEquals(s3[2], 2 ** -8, 1e-15);
});

Deno.test("alibiBias() is −slope·(i − j) on the causal part", () => {
  const T = 3;
  const b = alibiBias(T, 0.25);
  assertEquals(Array.from(b), [0, MASKED, MASKED, -0.25, 0, MASKED, -0.5, -0.25, 0]);
  // Slope 0 is the causal mask (up to the sign of zero).
  assertEquals(visible(alibiBias(4, 0), 4), visible(causalBias(4), 4));
  for (const v of alibiBias(4, 0)) assert(v === 0 || v === MASKED);
  // A negative slope rewards distance: +2·(i − j).
  assertEquals(Array.from(alibiBias(2, -2)), [0, MASKED, 2, 0]);
});

Deno.test("biases reject bad sizes, windows and slopes with RangeError", () => {
  assertThrows(() => causalBias(0), RangeError, "T must be an integer ≥ 1");
  assertThrows(() => hardAlibiBias(4, 0), RangeError, "window must be an integer ≥ 1 or null");
  assertThrows(() => hardAlibiBias(4, 1.5), RangeError, "current value is 1.5");
  assertThrows(() => alibiSlopes(0), RangeError, "heads");
  assertThrows(() => alibiBias(3, NaN), RangeError, "slope");
  assertThrows(() => alibiBias(2.5, 1), RangeError, "T must be");
});

import {
  assertAlmostEquals,
  assertEquals,
  AssertionError,
  assertRejects,
  assertThrows,
} from "@std/assert";

Deno.test("assertEquals compares structurally and fails on a difference", () => {
  assertEquals({ a: [1, 2] }, { a: [1, 2] });
  assertThrows(() => assertEquals([1], [2]), AssertionError);
});

Deno.test("assertAlmostEquals honours the tolerance", () => {
  assertAlmostEquals(1.0, 1.0 + 1e-9);
  assertAlmostEquals(1.0, 1.05, 0.1);
  assertThrows(() => assertAlmostEquals(1.0, 1.2, 0.1), AssertionError, "delta");
});

Deno.test("assertThrows checks the class and message", async () => {
  assertThrows(
    () => {
      throw new RangeError("bad value 3");
    },
    RangeError,
    "value 3",
  );
  assertThrows(() => assertThrows(() => {}), AssertionError);
  assertThrows(
    () =>
      assertThrows(() => {
        throw new TypeError("x");
      }, RangeError),
    AssertionError,
  );
  await assertRejects(() => Promise.reject(new TypeError("no")), TypeError, "no");
});

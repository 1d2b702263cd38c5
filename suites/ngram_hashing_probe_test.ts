import { assertEquals } from "@std/assert";
import { knee, trendViolations } from "./ngram_hashing_probe.ts";

Deno.test("the knee is the first n below 0.9 of the baseline", () => {
  const ns = [1, 2, 3, 4, 5];
  assertEquals(knee(ns, [0.98, 0.97, 0.95, 0.5, 0.4], 1.0), 4);
  assertEquals(knee(ns, [0.98, 0.97, 0.95, 0.93, 0.91], 1.0), null);
  assertEquals(knee(ns, [0.8, 0.97, 0.95, 0.5, 0.4], 1.0), 1);
});

Deno.test("trend violations count rises above the tolerance only", () => {
  assertEquals(trendViolations([0.9, 0.92, 0.5, 0.56, 0.3], 0.05), 1);
  assertEquals(trendViolations([0.9, 0.8, 0.7], 0.05), 0);
  assertEquals(trendViolations([0.5, 0.6, 0.4, 0.5], 0.05), 2);
});

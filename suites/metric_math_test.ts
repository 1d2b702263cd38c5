import { assert, assertAlmostEquals, assertEquals, assertThrows } from "@std/assert";
import {
  correctedPackedScores,
  denseScores,
  matMul64,
  packedPairs,
  readmePackedScores,
  scoreOpCounts,
  singularValues,
  transpose64,
  unpackSymmetric,
} from "./metric_math.ts";

Deno.test("packing runs over the upper triangle row by row", () => {
  const { k, k2 } = packedPairs(3);
  assertEquals([...k], [0, 0, 0, 1, 1, 2]);
  assertEquals([...k2], [0, 1, 2, 1, 2, 2]);
  assertEquals([...unpackSymmetric(Float64Array.of(1, 2, 3, 4, 5, 6), 3)], [
    1,
    2,
    3,
    2,
    4,
    5,
    3,
    5,
    6,
  ]);
  assertThrows(() => unpackSymmetric(new Float64Array(5), 3), RangeError, "needs 6 packed values");
});

Deno.test("the README's packed weights match the dense scores on the diagonal only", () => {
  // p = [[1, 2], [3, 5]], M = [[1, 1], [1, 1]]: dense r[0][1] = (1 + 2)(3 + 5) = 24.
  const p = Float64Array.of(1, 2, 3, 5);
  const m = Float64Array.of(1, 1, 1);
  assertEquals([...denseScores(p, unpackSymmetric(m, 2), 2, 2)], [9, 24, 24, 64]);
  // README, c ≠ c': 2·(1·3) + 4·(1·5) + 2·(2·5) = 46 (weights 2 on k = k', 4 off it).
  assertEquals([...readmePackedScores(p, m, 2, 2)], [9, 46, 46, 64]);
  assertEquals([...correctedPackedScores(p, m, 2, 2)], [9, 24, 24, 64]);
});

Deno.test("one-sided Jacobi finds the singular values of a rotated diagonal, and a rank", () => {
  const c = Math.cos(0.3), s = Math.sin(0.3);
  const R = Float64Array.of(c, -s, 0, s, c, 0, 0, 0, 1);
  const D = Float64Array.of(3, 0, 0, 0, 2, 0, 0, 0, 0.5);
  const a = matMul64(matMul64(R, D, 3, 3, 3), transpose64(R, 3, 3), 3, 3, 3);
  const sv = singularValues(a, 3, 3);
  [3, 2, 0.5].forEach((want, i) => assertAlmostEquals(sv[i], want, 1e-14));
  // An outer product u·vᵀ (4 × 3) has rank 1.
  const uv = matMul64(Float64Array.of(1, 2, 3, 4), Float64Array.of(1, -1, 2), 4, 1, 3);
  const r = singularValues(uv, 4, 3);
  assertAlmostEquals(r[0], Math.sqrt(30) * Math.sqrt(6), 1e-12);
  assert(r[1] < 1e-14 * r[0] && r[2] < 1e-14 * r[0], `${r}`);
});

Deno.test("operation counts reproduce CLAIMS.md MT5's worked examples", () => {
  assertEquals(scoreOpCounts(256, 64), {
    naive: 268_435_456,
    packed: 68_423_680,
    gemm: 5_242_880,
    gemmSymmetric: 3_153_920,
    claim: 8_192,
  });
  const big = scoreOpCounts(1024, 64);
  assertAlmostEquals(big.packed / big.gemm, 15.3, 0.05);
  assertEquals(big.claim, 32_768);
  assertEquals([scoreOpCounts(128, 32).packed, scoreOpCounts(128, 32).claim], [4_359_168, 2_048]);
});

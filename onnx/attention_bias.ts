/**
 * Additive attention biases, `[T, T]` row-major (row i = query position, column j = key
 * position), added to the scores before the softmax: 0 keeps a key as it is, {@linkcode MASKED}
 * removes it. Plain TypeScript data, fed to graphs as constants.
 *
 * - causal: key j visible to query i iff j ≤ i.
 * - Hard-ALiBi (Jelassi et al. 2024 §2.2, CLAIMS.md §1.3): head with window m sees the last m
 *   positions, i − m < j ≤ i; bias −∞ for j ≤ i − m and 0 otherwise. m = ∞ (here `null`) is NoPE
 *   with a causal mask.
 * - ALiBi (Press et al. 2022): −slope·(i − j) on visible keys; slopes 2^(−8(h+1)/H).
 * @module
 */

/** Additive bias of a forbidden position: exp(−1e9 − max) underflows to 0 in float32. */
export const MASKED = -1e9;

function checkLength(action: string, T: number): void {
  if (!Number.isInteger(T) || T < 1) {
    throw new RangeError(`Cannot ${action} as T must be an integer ≥ 1: current value is ${T}`);
  }
}

/**
 * Causal bias `[T, T]`: 0 where j ≤ i, {@linkcode MASKED} elsewhere.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { causalBias, MASKED } from "./attention_bias.ts";
 *
 * assertEquals(Array.from(causalBias(2)), [0, MASKED, 0, 0]);
 * ```
 */
export function causalBias(T: number): Float32Array {
  return hardAlibiBias(T, null);
}

/**
 * Hard-ALiBi bias `[T, T]` of a head with the given window m: 0 where i − m < j ≤ i (the last m
 * positions, the query's own included), {@linkcode MASKED} elsewhere; `null` = no window
 * (= {@linkcode causalBias}). Window 1 sees only the position itself.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { hardAlibiBias, MASKED as M } from "./attention_bias.ts";
 *
 * assertEquals(Array.from(hardAlibiBias(3, 2)), [0, M, M, 0, 0, M, M, 0, 0]);
 * ```
 */
export function hardAlibiBias(T: number, window: number | null): Float32Array {
  const action = "build a Hard-ALiBi bias";
  checkLength(action, T);
  if (window !== null && (!Number.isInteger(window) || window < 1)) {
    throw new RangeError(
      `Cannot ${action} as window must be an integer ≥ 1 or null: current value is ${window}`,
    );
  }
  const m = window ?? Infinity;
  const bias = new Float32Array(T * T).fill(MASKED); // [T, T]
  for (let i = 0; i < T; i++) {
    for (let j = Math.max(0, i - m + 1); j <= i; j++) bias[i * T + j] = 0;
  }
  return bias;
}

/**
 * ALiBi head slopes 2^(−8(h+1)/H), h = 0..H−1 (Press et al. 2022; the geometric sequence is
 * defined for any H, the paper picks powers of two).
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { alibiSlopes } from "./attention_bias.ts";
 *
 * assertEquals(alibiSlopes(2), [1 / 16, 1 / 256]);
 * ```
 */
export function alibiSlopes(heads: number): number[] {
  if (!Number.isInteger(heads) || heads < 1) {
    throw new RangeError(
      `Cannot compute ALiBi slopes as heads must be an integer ≥ 1: current value is ${heads}`,
    );
  }
  return Array.from({ length: heads }, (_, h) => 2 ** (-8 * (h + 1) / heads));
}

/**
 * ALiBi bias `[T, T]` of one head: −slope·(i − j) where j ≤ i, {@linkcode MASKED} elsewhere. A
 * positive slope favours near keys (Press et al.); a negative one favours distant keys, e.g. the
 * earliest of several equal matches (`models/hash_copy_transformer.ts`).
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { alibiBias, MASKED } from "./attention_bias.ts";
 *
 * assertEquals(Array.from(alibiBias(2, 0.5)), [0, MASKED, -0.5, 0]);
 * ```
 */
export function alibiBias(T: number, slope: number): Float32Array {
  checkLength("build an ALiBi bias", T);
  if (!Number.isFinite(slope)) {
    throw new RangeError(
      `Cannot build an ALiBi bias as slope must be finite: current value is ${slope}`,
    );
  }
  const bias = new Float32Array(T * T).fill(MASKED); // [T, T]
  for (let i = 0; i < T; i++) {
    for (let j = 0; j <= i; j++) bias[i * T + j] = j === i ? 0 : slope * (j - i); // −slope·(i − j)
  }
  return bias;
}

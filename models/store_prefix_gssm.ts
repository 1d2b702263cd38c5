/**
 * The generalised state-space model (GSSM) of "Repeat After Me" (Jelassi et al. 2024, §2.1;
 * Thm 2.7) that best copies with a bounded state: it stores the first s letters of the string
 * and guesses the rest (CLAIMS.md §1.3 J3(b)). Thm 2.7 bounds any GSSM's copy accuracy by
 * |S|/D^L, S the states it can be in after ⟨COPY⟩; this model meets the bound with equality,
 * accuracy D^(s−L). Plain TypeScript over integer states, not an ONNX graph: there is nothing to
 * train and nothing to run in parallel.
 *
 * ```text
 * D = 4, L = 5, s = 3:   $ a c b d a |  →  a c b a a     (stores "acb", then guesses letter 0)
 * ```
 * @module
 */

/** A GSSM (§2.1): integer states, an update u(state, token) and an output r(state). */
export interface Gssm {
  initial: number;
  update(state: number, token: number): number;
  output(state: number): number;
}

/**
 * The "store the first s tokens" GSSM for strings of L letters over D letters: while reading
 * it keeps the first s letters (a base-D number) and a letter count; ⟨COPY⟩ switches it to
 * writing, where it emits the stored letters and then guesses letter 0. State =
 * ((phase·(L+1) + count)·D^s + stored). Tokens: letters 0..D−1, BOS = D, COPY = D + 1.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { runGssmCopy, storePrefixGssm } from "./store_prefix_gssm.ts";
 *
 * const { outputs } = runGssmCopy(storePrefixGssm(4, 5, 3), [0, 2, 1, 3, 0], 4);
 * assertEquals(outputs, [0, 2, 1, 0, 0]);
 * ```
 */
export function storePrefixGssm(D: number, L: number, s: number): Gssm {
  const size = D ** s;
  const BOS = D, COPY = D + 1;
  const split = (state: number) => {
    const stored = state % size;
    const rest = Math.floor(state / size);
    return { phase: Math.floor(rest / (L + 1)), count: rest % (L + 1), stored };
  };
  const join = (phase: number, count: number, stored: number) =>
    (phase * (L + 1) + count) * size + stored;
  return {
    initial: 0,
    update(state, token) {
      const { phase, count, stored } = split(state);
      if (token === BOS) return join(0, 0, 0);
      if (token === COPY) return join(1, 0, stored);
      if (phase === 0) {
        const keep = count < s ? stored + token * D ** count : stored;
        return join(0, Math.min(count + 1, L), keep);
      }
      return join(1, Math.min(count + 1, L), stored); // writing: its own output comes back
    },
    output(state) {
      const { count, stored } = split(state);
      return count < s ? Math.floor(stored / D ** count) % D : 0;
    },
  };
}

/**
 * Runs a GSSM on ⟨BOS⟩ x ⟨COPY⟩ and then autoregressively for |x| steps (its output fed back).
 * Returns the outputs and the state right after ⟨COPY⟩ (which determines them, Thm 2.7's proof).
 */
export function runGssmCopy(
  m: Gssm,
  x: ArrayLike<number>,
  D: number,
): { outputs: number[]; promptState: number } {
  let state = m.update(m.initial, D);
  for (let i = 0; i < x.length; i++) state = m.update(state, x[i]);
  state = m.update(state, D + 1);
  const promptState = state;
  const outputs: number[] = [];
  for (let i = 0; i < x.length; i++) {
    const y = m.output(state);
    outputs.push(y);
    state = m.update(state, y);
  }
  return { outputs, promptState };
}

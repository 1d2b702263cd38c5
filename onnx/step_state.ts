/**
 * The state the train step of `onnx/optim.ts` carries from one step to the next: every
 * parameter's value and AdamW moments, fed as the flat vectors `p`, `m` and `v` and returned as
 * `next.p`, `next.m` and `next.v`. The training loop (`runner/trainer.ts`) and hand-driven steps
 * (the benches) share these helpers.
 * @module
 */
import { flatParams, type ParamShape, type ParamSpec, unflatParams } from "./optim.ts";
import { type Tensor, tensor } from "./runtime.ts";

/** Tensors by name: `p.<name>`, `m.<name>`, `v.<name>` for every parameter. */
export interface StepState {
  tensors: Map<string, Float32Array>;
}

/** The initial step state: initial parameters, zero moments. */
export function initialStepState(params: readonly ParamSpec[]): StepState {
  const tensors = new Map<string, Float32Array>();
  for (const p of params) {
    tensors.set(`p.${p.name}`, p.init.slice());
    tensors.set(`m.${p.name}`, new Float32Array(p.init.length));
    tensors.set(`v.${p.name}`, new Float32Array(p.init.length));
  }
  return { tensors };
}

const STATE_KINDS = ["p", "m", "v"] as const;

/**
 * The train step's state feeds `p`, `m` and `v`: the `p.`, `m.` and `v.` tensors of `state`,
 * each kind flattened into one vector in `params` order (the step's layout).
 */
export function stateFeeds(
  state: StepState,
  params: readonly ParamShape[],
): Record<string, Tensor> {
  const feeds: Record<string, Tensor> = {};
  for (const kind of STATE_KINDS) {
    const flat = flatParams(params, (name) => {
      const v = state.tensors.get(`${kind}.${name}`);
      if (!v) throw new RangeError(`Cannot feed the train state: it has no ${kind}.${name}`);
      return v;
    });
    feeds[kind] = tensor("float32", flat, [flat.length]);
  }
  return feeds;
}

/** Feeds a step's `next.p`, `next.m` and `next.v` outputs back as the next step's state. */
export function advanceFeeds(feeds: Record<string, Tensor>, out: Record<string, Tensor>): void {
  for (const kind of STATE_KINDS) feeds[kind] = out[`next.${kind}`];
}

/**
 * Writes the state feeds back into `state.tensors` as per-parameter views (no copy: each step's
 * outputs are new arrays, never written again).
 */
export function storeFeeds(
  state: StepState,
  feeds: Record<string, Tensor>,
  params: readonly ParamShape[],
): void {
  for (const kind of STATE_KINDS) {
    for (const [name, v] of unflatParams(params, feeds[kind].data as Float32Array)) {
      state.tensors.set(`${kind}.${name}`, v);
    }
  }
}

/** Just the parameters of a state, by parameter name. */
export function stateParams(state: StepState): Map<string, Float32Array> {
  const out = new Map<string, Float32Array>();
  for (const [k, v] of state.tensors) if (k.startsWith("p.")) out.set(k.slice(2), v);
  return out;
}

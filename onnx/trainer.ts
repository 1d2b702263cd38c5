/**
 * The training loop: runs the train-step graph of `onnx/optim.ts` step after step, feeding each
 * step's outputs back as the next step's parameters and AdamW moments. Deterministic: the batch
 * of step t comes from the caller's `batch(t)`, so a run resumed from a checkpoint at step t
 * continues exactly as an uninterrupted one.
 * @module
 */
import {
  flatParams,
  learningRate,
  type ParamShape,
  type ParamSpec,
  type ScheduleConfig,
  unflatParams,
} from "./optim.ts";
import { Session, type Tensor, tensor } from "./runtime.ts";

/** Everything needed to continue training: tensors and logs after `step` steps. */
export interface TrainState {
  /** Steps completed. */
  step: number;
  /** `p.<name>`, `m.<name>`, `v.<name>` for every parameter. */
  tensors: Map<string, Float32Array>;
  /** Mean training loss over each logging window, keyed by the window's last step. */
  losses: { step: number; loss: number }[];
  /** Evaluation records, keyed by step. */
  evals: { step: number; metrics: Record<string, number> }[];
  /** Loss sum and count of the logging window in progress (so a resumed log is identical). */
  window: { sum: number; count: number };
}

/** Options of {@linkcode train}. */
export interface TrainOptions {
  /** Serialised train-step graph (`buildTrainStep(spec).toModel()`). */
  model: Uint8Array;
  params: readonly ParamSpec[];
  /** Total steps. */
  steps: number;
  schedule: ScheduleConfig;
  /** The batch inputs of 1-based step `step`. */
  batch: (step: number) => Record<string, Tensor>;
  threads: number;
  /** Continue from this state instead of the initial parameters. */
  resume?: TrainState;
  /** Steps per loss-log window (default 50). */
  logEvery?: number;
  /** Evaluate after every `evalEvery` steps and after the last (default: only the last). */
  evalEvery?: number;
  evaluate?: (step: number, params: Map<string, Float32Array>) => Promise<Record<string, number>>;
  /** Called after each step with the loss. */
  onStep?: (step: number, loss: number) => void;
  /** Called every `checkpointSeconds` (default 30) of wall time with the current state. */
  onCheckpoint?: (state: TrainState) => Promise<void>;
  checkpointSeconds?: number;
}

/** The initial state: initial parameters, zero moments. */
export function initialState(params: readonly ParamSpec[]): TrainState {
  const tensors = new Map<string, Float32Array>();
  for (const p of params) {
    tensors.set(`p.${p.name}`, p.init.slice());
    tensors.set(`m.${p.name}`, new Float32Array(p.init.length));
    tensors.set(`v.${p.name}`, new Float32Array(p.init.length));
  }
  return { step: 0, tensors, losses: [], evals: [], window: { sum: 0, count: 0 } };
}

const STATE_KINDS = ["p", "m", "v"] as const;

/**
 * The train step's state feeds `p`, `m` and `v`: the `p.`, `m.` and `v.` tensors of `state`,
 * each kind flattened into one vector in `params` order (the step's layout).
 */
export function stateFeeds(
  state: TrainState,
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
  state: TrainState,
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
export function stateParams(state: TrainState): Map<string, Float32Array> {
  const out = new Map<string, Float32Array>();
  for (const [k, v] of state.tensors) if (k.startsWith("p.")) out.set(k.slice(2), v);
  return out;
}

/** Trains from the initial parameters (or `resume`) to `steps` steps and returns the state. */
export async function train(o: TrainOptions): Promise<TrainState> {
  const session = await Session.create(o.model, { threads: o.threads });
  const state = o.resume ?? initialState(o.params);
  const logEvery = o.logEvery ?? 50;
  const checkpointMs = (o.checkpointSeconds ?? 30) * 1000;
  let lastCheckpoint = performance.now();
  const feeds = stateFeeds(state, o.params);
  try {
    for (let step = state.step + 1; step <= o.steps; step++) {
      const lr = learningRate(step, o.schedule);
      feeds.step = tensor("float32", Float32Array.of(step), []);
      feeds.lr = tensor("float32", Float32Array.of(lr), []);
      Object.assign(feeds, o.batch(step));
      const out = await session.run(feeds);
      const loss = Number(out.loss.data[0]);
      if (!Number.isFinite(loss)) {
        throw new RangeError(`Training diverged: loss is ${loss} at step ${step} (lr ${lr})`);
      }
      advanceFeeds(feeds, out);
      state.step = step;
      state.window.sum += loss;
      state.window.count++;
      if (step % logEvery === 0 || step === o.steps) {
        state.losses.push({ step, loss: state.window.sum / state.window.count });
        state.window = { sum: 0, count: 0 };
      }
      o.onStep?.(step, loss);
      const evalNow = step === o.steps || (o.evalEvery !== undefined && step % o.evalEvery === 0);
      const checkpointNow = o.onCheckpoint && performance.now() - lastCheckpoint >= checkpointMs;
      if (evalNow || checkpointNow) storeFeeds(state, feeds, o.params);
      if (evalNow && o.evaluate) {
        state.evals.push({ step, metrics: await o.evaluate(step, stateParams(state)) });
      }
      if (checkpointNow && o.onCheckpoint) {
        await o.onCheckpoint(state);
        lastCheckpoint = performance.now();
      }
    }
  } finally {
    await session.release();
  }
  storeFeeds(state, feeds, o.params);
  return state;
}

/**
 * The training loop: runs the train-step graph of `onnx/optim.ts` step after step, feeding each
 * step's outputs back as the next step's parameters and AdamW moments (`onnx/step_state.ts`),
 * logging the loss, evaluating and handing out checkpoints. Deterministic: the batch of step t
 * comes from the caller's `batch(t)`, so a run resumed from a checkpoint at step t continues
 * exactly as an uninterrupted one.
 * @module
 */
import { learningRate, type ParamSpec, type ScheduleConfig } from "../onnx/optim.ts";
import { type Engine, Session, type Tensor, tensor } from "../onnx/runtime.ts";
import {
  advanceFeeds,
  initialStepState,
  stateFeeds,
  stateParams,
  type StepState,
  storeFeeds,
} from "../onnx/step_state.ts";

/** Everything needed to continue training: tensors and logs after `step` steps. */
export interface TrainState extends StepState {
  /** Steps completed. */
  step: number;
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
  /** Which kernels run the custom ops (`runner/engine.ts` openEngine, or PORTABLE_ENGINE). */
  engine: Engine;
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

/** The initial state: initial parameters, zero moments, no logs. */
export function initialState(params: readonly ParamSpec[]): TrainState {
  const { tensors } = initialStepState(params);
  return { step: 0, tensors, losses: [], evals: [], window: { sum: 0, count: 0 } };
}

/** Trains from the initial parameters (or `resume`) to `steps` steps and returns the state. */
export async function train(o: TrainOptions): Promise<TrainState> {
  const session = await Session.create(o.model, { threads: o.threads, engine: o.engine });
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

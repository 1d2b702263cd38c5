/**
 * Training as suites use it: the ONNX train loop plus the model cache, checkpoint/resume and a
 * progress display (step, loss, rate, ETA).
 * @module
 */
import { buildTrainStep, type ScheduleConfig, type TrainStepSpec } from "../onnx/optim.ts";
import type { Tensor } from "../onnx/runtime.ts";
import { train, type TrainState } from "../onnx/trainer.ts";
import { cacheKey, engineVersion, ModelCache } from "./model_cache.ts";
import type { SuiteContext } from "./suite.ts";

/** One model to train. */
export interface TrainJob {
  /** Shown in progress lines, e.g. `selective-copy dil[1,2,3,4,5,1] seed 0`. */
  label: string;
  /** Everything that determines the trained model besides the engine code (configs, seed). */
  key: unknown;
  spec: TrainStepSpec;
  steps: number;
  schedule: ScheduleConfig;
  batch: (step: number) => Record<string, Tensor>;
  evalEvery?: number;
  evaluate?: (step: number, params: Map<string, Float32Array>) => Promise<Record<string, number>>;
}

/** A trained model and where it came from. */
export interface TrainedModel {
  state: TrainState;
  /** True when read from the cache without training. */
  cached: boolean;
  /** Wall-clock seconds spent training in this process. */
  seconds: number;
}

// Cache keys trained by this process. `--fresh` means "train every model once in this run": a
// model that one suite trained and a later suite reuses (the probe reuses copy-length-
// generalisation's Hard-ALiBi models) is loaded, not trained a second time.
const trainedInThisProcess = new Set<string>();

/**
 * Trains `job`, or loads it from the cache; resumes from a checkpoint when one exists. With
 * `ctx.fresh`, entries from before this process are ignored and removed; entries this process
 * trained are still loaded.
 */
export async function trainCached(ctx: SuiteContext, job: TrainJob): Promise<TrainedModel> {
  const cache = new ModelCache(ctx.cacheDir);
  const key = cacheKey({ job: job.key, steps: job.steps, engine: engineVersion() });
  const fresh = ctx.fresh && !trainedInThisProcess.has(key);
  if (fresh) {
    await cache.remove(key, "final");
    await cache.remove(key, "checkpoint");
  } else {
    const done = cache.load(key);
    if (done) return { state: done, cached: true, seconds: 0 };
  }
  const resume = fresh ? undefined : cache.load(key, "checkpoint");
  if (resume) ctx.log(`${job.label}: resuming from checkpoint at step ${resume.step}`);
  const progress = ctx.progress(job.label, job.steps);
  if (resume) progress.resumeAt(resume.step);
  const t0 = performance.now();
  let lossEma = NaN;
  const state = await train({
    model: buildTrainStep(job.spec).toModel(),
    params: job.spec.params,
    steps: job.steps,
    schedule: job.schedule,
    batch: job.batch,
    threads: ctx.threads,
    resume,
    evalEvery: job.evalEvery,
    evaluate: job.evaluate,
    onStep: (step, loss) => {
      lossEma = Number.isNaN(lossEma) ? loss : 0.95 * lossEma + 0.05 * loss;
      progress.update(step, `loss ${lossEma.toFixed(4)}`);
    },
    onCheckpoint: (s) => cache.save(key, "checkpoint", s, { label: job.label }),
  });
  progress.finish();
  await cache.save(key, "final", state, { label: job.label });
  await cache.remove(key, "checkpoint");
  trainedInThisProcess.add(key);
  return { state, cached: false, seconds: (performance.now() - t0) / 1000 };
}

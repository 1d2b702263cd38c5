/**
 * Training as suites use it: the train loop plus the model cache, checkpoint/resume and a
 * progress display (step, loss, rate, ETA).
 * @module
 */
import { buildTrainStep, type ScheduleConfig, type TrainStepSpec } from "../onnx/optim.ts";
import type { Tensor } from "../onnx/runtime.ts";
import type { EngineInfo } from "./engine.ts";
import { cacheKey, ModelCache } from "./model_cache.ts";
import type { Progress } from "./progress.ts";
import { train, type TrainState } from "./trainer.ts";

/** What training needs from its caller (a suite's context is one). */
export interface TrainContext {
  /** The engine every session runs on; its version keys the cache. */
  engine: EngineInfo;
  /** ONNX Runtime intra-op threads. */
  threads: number;
  /** Retrain instead of reading trained models from the cache. */
  fresh: boolean;
  /**
   * The cache keys this run has trained. `--fresh` means "train every model once in this run":
   * a model one suite trained and a later suite reuses (the probe reuses copy-length-
   * generalisation's Hard-ALiBi models) is loaded, not trained a second time. Absent: none.
   */
  trainedThisRun?: Set<string>;
  /** Folder for trained models and checkpoints (keyed by content hash). */
  cacheDir: string;
  /** Creates a progress display for a long loop of `total` units. */
  progress(label: string, total: number, unit?: string): Progress;
  /** A line of log output (stderr). */
  log(message: string): void;
}

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

/**
 * Trains `job`, or loads it from the cache; resumes from a checkpoint when one exists. With
 * `ctx.fresh`, entries from before this run are ignored and removed; entries this run trained
 * (`ctx.trainedThisRun`) are still loaded. An entry that fails its checks (unreadable, another
 * format, truncated, checksum mismatch) is named in one `ctx.log` line, removed and rebuilt.
 */
export async function trainCached(ctx: TrainContext, job: TrainJob): Promise<TrainedModel> {
  const cache = new ModelCache(ctx.cacheDir);
  const key = cacheKey({ job: job.key, steps: job.steps, engine: ctx.engine.version });
  const fresh = ctx.fresh && !ctx.trainedThisRun?.has(key);
  if (fresh) {
    await cache.remove(key, "final");
    await cache.remove(key, "checkpoint");
  } else {
    const done = cache.load(key, "final", ctx.log);
    if (done) return { state: done, cached: true, seconds: 0 };
  }
  const resume = fresh ? undefined : cache.load(key, "checkpoint", ctx.log);
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
    engine: ctx.engine,
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
  ctx.trainedThisRun?.add(key);
  return { state, cached: false, seconds: (performance.now() - t0) / 1000 };
}

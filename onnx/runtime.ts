/**
 * A thin wrapper over `onnxruntime-node` inference sessions: thread count from the caller
 * (default: every core), sequential execution, and one cached session per (model bytes,
 * options) so a graph is optimised once per process.
 * @module
 */
import * as ort from "onnxruntime-node";
import { createHash } from "node:crypto";
import type { DType } from "./graph.ts";

/** The ORT tensor type, re-exported so callers need not import onnxruntime-node. */
export type Tensor = ort.Tensor;

/** Options of a session. */
export interface SessionOptions {
  /** Intra-op threads; default: every core. */
  threads?: number;
  /** Write an ORT profile (JSON trace) with this file prefix. */
  profilePrefix?: string;
}

/** The number of cores, the default thread count. */
export function defaultThreads(): number {
  return navigator.hardwareConcurrency || 1;
}

/** The onnxruntime-node version in use. */
export function ortVersion(): string {
  return ort.env.versions.common ?? "unknown";
}

/** Wraps typed data as an ORT tensor. */
export function tensor(
  dtype: DType,
  data: Float32Array | Float64Array | Int32Array | BigInt64Array | Uint8Array,
  dims: readonly number[],
): Tensor {
  return new ort.Tensor(dtype === "uint8" ? "uint8" : dtype, data, dims);
}

/** A loaded model ready to run. */
export class Session {
  readonly #session: ort.InferenceSession;
  readonly outputNames: readonly string[];
  readonly inputNames: readonly string[];

  private constructor(session: ort.InferenceSession) {
    this.#session = session;
    this.outputNames = session.outputNames;
    this.inputNames = session.inputNames;
  }

  /** Loads `model` (ONNX bytes) into a new session. */
  static async create(model: Uint8Array, opts: SessionOptions = {}): Promise<Session> {
    const threads = opts.threads ?? defaultThreads();
    const s = await ort.InferenceSession.create(model, {
      intraOpNumThreads: threads,
      interOpNumThreads: 1,
      executionMode: "sequential",
      graphOptimizationLevel: "all",
      enableCpuMemArena: true,
      enableMemPattern: true,
      enableProfiling: opts.profilePrefix !== undefined,
      profileFilePrefix: opts.profilePrefix,
      logSeverityLevel: 3,
      // Softmax outputs of confident models underflow to denormals, and denormal arithmetic
      // made the tied head's gradient GEMM ~20× slower: flush them to zero.
      extra: { session: { set_denormal_as_zero: "1" } },
    });
    return new Session(s);
  }

  /** Runs the model; returns every output (or those named in `fetches`). */
  run(
    feeds: Record<string, Tensor>,
    fetches?: readonly string[],
  ): Promise<Record<string, Tensor>> {
    return fetches ? this.#session.run(feeds, fetches) : this.#session.run(feeds);
  }

  /** Ends profiling (when enabled) and frees the session. */
  async release(): Promise<void> {
    await this.#session.release();
  }

  /** Stops profiling; ORT writes the trace file. */
  endProfiling(): void {
    this.#session.endProfiling();
  }
}

const cache = new Map<string, Promise<Session>>();

/** A session for `model`, shared by every caller asking for the same bytes and options. */
export function cachedSession(model: Uint8Array, opts: SessionOptions = {}): Promise<Session> {
  const hash = createHash("sha256").update(model).digest("hex");
  const key = `${hash}:${opts.threads ?? defaultThreads()}`;
  let s = cache.get(key);
  if (!s) {
    s = Session.create(model, opts);
    cache.set(key, s);
  }
  return s;
}

/** Frees every cached session (tests call this to keep resource counts flat). */
export async function releaseCachedSessions(): Promise<void> {
  const all = [...cache.values()];
  cache.clear();
  for (const s of all) await (await s).release();
}

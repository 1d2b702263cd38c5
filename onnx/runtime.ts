/**
 * A thin wrapper over ONNX Runtime inference sessions: thread count from the caller (default:
 * every core), sequential execution, and one cached session per (model bytes, options) so a
 * graph is optimised once per process.
 *
 * Two engines run the same graphs: `onnxruntime-node` (portable: claimbench's custom ops run
 * as their ONNX function definitions), or a {@linkcode NativeSession} that registers the native
 * op library so that those ops run as native kernels (same functions, different rounding). The
 * engine is a value ({@linkcode Engine}) in each session's options; nothing here remembers one.
 * @module
 */
import * as ort from "onnxruntime-node";
import { createHash } from "node:crypto";
import type { DType } from "./graph.ts";
import { NativeSession, type NativeTensor, type NativeTensorData } from "./native_session.ts";

/** The ORT tensor type, re-exported so callers need not import onnxruntime-node. */
export type Tensor = ort.Tensor;

/** Options of a session. */
export interface SessionOptions {
  /** Intra-op threads; default: every core. */
  threads?: number;
  /**
   * Write an ORT profile (JSON trace) with this file prefix: on {@linkcode Session.endProfiling}
   * (portable engine) or {@linkcode Session.release} (native engine).
   */
  profilePrefix?: string;
  /** Which kernels run the custom ops; default {@linkcode PORTABLE_ENGINE}. */
  engine?: Engine;
}

/**
 * Which kernels run claimbench's custom ops: `portable` (their ONNX definitions, inlined by
 * onnxruntime-node; `library` null) or `native` (the C++ kernels of the op library at `library`,
 * built by `native/build.ts`, registered in a {@linkcode NativeSession}).
 */
export interface Engine {
  readonly kind: "portable" | "native";
  readonly library: string | null;
}

/** The default engine: custom ops run as their ONNX definitions. */
export const PORTABLE_ENGINE: Engine = Object.freeze({ kind: "portable", library: null });

/** The native engine over the op library at `library` (a path from `buildNativeOps()`). */
export function nativeEngine(library: string): Engine {
  return Object.freeze({ kind: "native", library });
}

/** The op library a session on `engine` registers, or null; TypeError on a malformed engine. */
function engineLibrary(engine: Engine): string | null {
  if (engine.kind === "portable") return null;
  if (engine.kind === "native" && engine.library) return engine.library;
  throw new TypeError(
    `Cannot open a session on engine ${engine.kind} as it names no op library: current value is ${
      JSON.stringify(engine.library)
    }`,
  );
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

/** ort.Tensor's type name for the data of a native tensor. */
function tensorType(data: NativeTensorData): ort.Tensor.Type {
  if (data instanceof Float32Array) return "float32";
  if (data instanceof Float64Array) return "float64";
  if (data instanceof Int32Array) return "int32";
  if (data instanceof BigInt64Array) return "int64";
  return "uint8";
}

/** A loaded model ready to run. */
export class Session {
  readonly #session: ort.InferenceSession | NativeSession;
  readonly outputNames: readonly string[];
  readonly inputNames: readonly string[];

  private constructor(session: ort.InferenceSession | NativeSession) {
    this.#session = session;
    this.outputNames = session.outputNames;
    this.inputNames = session.inputNames;
  }

  /** Whether the native op library is registered in this session. */
  get native(): boolean {
    return this.#session instanceof NativeSession;
  }

  /** Loads `model` (ONNX bytes) into a new session. */
  static async create(model: Uint8Array, opts: SessionOptions = {}): Promise<Session> {
    const threads = opts.threads ?? defaultThreads();
    const library = engineLibrary(opts.engine ?? PORTABLE_ENGINE);
    if (library !== null) {
      return new Session(
        NativeSession.create(model, {
          threads,
          customOpLibraries: [library],
          profilePrefix: opts.profilePrefix,
        }),
      );
    }
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
    const s = this.#session;
    if (!(s instanceof NativeSession)) {
      return fetches ? s.run(feeds, fetches) : s.run(feeds);
    }
    try {
      const inputs: Record<string, NativeTensor> = {};
      for (const [k, t] of Object.entries(feeds)) {
        inputs[k] = { data: t.data as NativeTensorData, dims: t.dims };
      }
      const out: Record<string, Tensor> = {};
      for (const [k, t] of Object.entries(s.run(inputs, fetches))) {
        out[k] = new ort.Tensor(tensorType(t.data), t.data, t.dims);
      }
      return Promise.resolve(out);
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /** Ends profiling (when enabled) and frees the session. */
  async release(): Promise<void> {
    const s = this.#session;
    if (s instanceof NativeSession) s.close();
    else await s.release();
  }

  /** Stops profiling and writes the trace (portable engine; the native one writes on release). */
  endProfiling(): void {
    const s = this.#session;
    if (!(s instanceof NativeSession)) s.endProfiling();
  }
}

const cache = new Map<string, Promise<Session>>();

/**
 * A session for `model`, shared by every caller asking for the same bytes, thread count and
 * engine.
 */
export function cachedSession(model: Uint8Array, opts: SessionOptions = {}): Promise<Session> {
  const hash = createHash("sha256").update(model).digest("hex");
  const library = engineLibrary(opts.engine ?? PORTABLE_ENGINE) ?? "portable";
  const key = `${hash}:${opts.threads ?? defaultThreads()}:${library}`;
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

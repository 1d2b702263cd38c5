/**
 * A small ONNX Runtime session over Deno FFI to onnxruntime-node's own `libonnxruntime.so.1`:
 * the C API (`OrtGetApiBase` → `GetApi`) with what onnxruntime-node cannot do, registering a
 * custom-op library (`native/kernels/`, built by `native/build.ts`). Inputs are passed
 * zero-copy; outputs are copied out of ORT's buffers, then every ORT object is released.
 *
 * Both this and `onnx/runtime.ts` use the same ORT instance in one process (PLATFORM.md).
 * Needs `--allow-ffi --allow-read`.
 *
 * The OrtApi table is a C struct of function pointers, append-only across releases; the entry
 * indices below are from microsoft/onnxruntime `include/onnxruntime/core/session/
 * onnxruntime_c_api.h` (entry i sits at byte offset 8·i on 64-bit platforms).
 * @module
 */
import { createRequire } from "node:module";
import { dirname, join } from "node:path";

/** Typed arrays a {@linkcode NativeTensor} may hold; the element type follows the array. */
export type NativeTensorData =
  | Float32Array
  | Float64Array
  | Int32Array
  | BigInt64Array
  | Uint8Array;

/** A tensor as {@linkcode NativeSession.run} takes and returns it. */
export interface NativeTensor {
  readonly data: NativeTensorData;
  readonly dims: readonly number[];
}

/** Options of {@linkcode NativeSession.create}. */
export interface NativeSessionOptions {
  /** Intra-op threads (ORT's pool; custom ops may use it too); default 1. */
  threads?: number;
  /** Paths of custom-op libraries to register (each exports `RegisterCustomOps`). */
  customOpLibraries?: readonly string[];
  /**
   * Profile every run (ORT's JSON trace, as the portable engine's `enableProfiling`): ORT
   * writes `<prefix>_<date>.json` when the session is closed.
   */
  profilePrefix?: string;
}

// ONNXTensorElementDataType codes.
const ELEMENT = { float32: 1, uint8: 2, int32: 6, int64: 7, float64: 11 } as const;
const ORT_LOGGING_LEVEL_ERROR = 3;
const ORT_ENABLE_ALL = 99; // GraphOptimizationLevel
const ORT_SEQUENTIAL = 0; // ExecutionMode
const ORT_ARENA_ALLOCATOR = 1; // OrtAllocatorType
const ORT_MEM_TYPE_DEFAULT = 0; // OrtMemType
/** The OrtApi version we request: its table holds every entry used here. */
const API_VERSION = 18;

// OrtApi entries we call: [index in the table, FFI signature].
const API = {
  GetErrorMessage: [2, { parameters: ["pointer"], result: "pointer" }],
  CreateEnv: [3, { parameters: ["i32", "buffer", "buffer"], result: "pointer" }],
  CreateSessionFromArray: [8, {
    parameters: ["pointer", "buffer", "usize", "pointer", "buffer"],
    result: "pointer",
  }],
  Run: [9, {
    parameters: ["pointer", "pointer", "buffer", "buffer", "usize", "buffer", "usize", "buffer"],
    result: "pointer",
  }],
  CreateSessionOptions: [10, { parameters: ["buffer"], result: "pointer" }],
  SetSessionExecutionMode: [13, { parameters: ["pointer", "i32"], result: "pointer" }],
  EnableProfiling: [14, { parameters: ["pointer", "buffer"], result: "pointer" }],
  SetSessionGraphOptimizationLevel: [23, { parameters: ["pointer", "i32"], result: "pointer" }],
  SetIntraOpNumThreads: [24, { parameters: ["pointer", "i32"], result: "pointer" }],
  SetInterOpNumThreads: [25, { parameters: ["pointer", "i32"], result: "pointer" }],
  SessionGetInputCount: [30, { parameters: ["pointer", "buffer"], result: "pointer" }],
  SessionGetOutputCount: [31, { parameters: ["pointer", "buffer"], result: "pointer" }],
  SessionGetInputName: [36, {
    parameters: ["pointer", "usize", "pointer", "buffer"],
    result: "pointer",
  }],
  SessionGetOutputName: [37, {
    parameters: ["pointer", "usize", "pointer", "buffer"],
    result: "pointer",
  }],
  CreateTensorWithDataAsOrtValue: [49, {
    parameters: ["pointer", "buffer", "usize", "buffer", "usize", "i32", "buffer"],
    result: "pointer",
  }],
  GetTensorMutableData: [51, { parameters: ["pointer", "buffer"], result: "pointer" }],
  GetTensorElementType: [60, { parameters: ["pointer", "buffer"], result: "pointer" }],
  GetDimensionsCount: [61, { parameters: ["pointer", "buffer"], result: "pointer" }],
  GetDimensions: [62, { parameters: ["pointer", "buffer", "usize"], result: "pointer" }],
  GetTensorTypeAndShape: [65, { parameters: ["pointer", "buffer"], result: "pointer" }],
  CreateCpuMemoryInfo: [69, { parameters: ["i32", "i32", "buffer"], result: "pointer" }],
  AllocatorFree: [76, { parameters: ["pointer", "pointer"], result: "pointer" }],
  GetAllocatorWithDefaultOptions: [78, { parameters: ["buffer"], result: "pointer" }],
  ReleaseEnv: [92, { parameters: ["pointer"], result: "void" }],
  ReleaseStatus: [93, { parameters: ["pointer"], result: "void" }],
  ReleaseMemoryInfo: [94, { parameters: ["pointer"], result: "void" }],
  ReleaseSession: [95, { parameters: ["pointer"], result: "void" }],
  ReleaseValue: [96, { parameters: ["pointer"], result: "void" }],
  ReleaseTensorTypeAndShapeInfo: [99, { parameters: ["pointer"], result: "void" }],
  ReleaseSessionOptions: [100, { parameters: ["pointer"], result: "void" }],
  AddSessionConfigEntry: [130, { parameters: ["pointer", "buffer", "buffer"], result: "pointer" }],
  RegisterCustomOpsLibrary_V2: [228, { parameters: ["pointer", "buffer"], result: "pointer" }],
} as const satisfies Record<string, readonly [number, Deno.ForeignFunction]>;

type ApiName = keyof typeof API;
type Fns = { [K in ApiName]: Deno.UnsafeFnPointer<(typeof API)[K][1]> };

/**
 * Path of the `libonnxruntime.so.1` that ships in the onnxruntime-node package, laid out as
 * `bin/napi-v6/<platform>/<arch>/` beside its `dist/` (where its binding loads it from).
 */
export function ortLibraryPath(): string {
  const entry = createRequire(import.meta.url).resolve("onnxruntime-node"); // …/dist/index.js
  const platform = Deno.build.os === "darwin" ? "darwin" : Deno.build.os;
  const arch = Deno.build.arch === "x86_64" ? "x64" : "arm64";
  const file = Deno.build.os === "darwin" ? "libonnxruntime.1.dylib" : "libonnxruntime.so.1";
  return join(dirname(entry), "..", "bin", "napi-v6", platform, arch, file);
}

function cString(s: string): Uint8Array<ArrayBuffer> {
  const bytes = new TextEncoder().encode(s);
  const out = new Uint8Array(bytes.length + 1);
  out.set(bytes);
  return out;
}

function outPointer(): BigUint64Array<ArrayBuffer> {
  return new BigUint64Array(1);
}

function pointerAt(out: BigUint64Array, i = 0): Deno.PointerValue {
  return Deno.UnsafePointer.create(out[i]);
}

/** The loaded library, its OrtApi functions and the process-wide OrtEnv (shared, counted). */
class Ort {
  readonly fns: Fns;
  readonly version: string;
  // Held for the life of the process: the function pointers point into it.
  readonly #lib: Deno.DynamicLibrary<{ OrtGetApiBase: { parameters: []; result: "pointer" } }>;
  #env: Deno.PointerValue = null;
  #envUsers = 0;

  constructor(path: string) {
    this.#lib = Deno.dlopen(path, { OrtGetApiBase: { parameters: [], result: "pointer" } });
    const base = this.#lib.symbols.OrtGetApiBase();
    if (base === null) throw new Error(`Cannot use ONNX Runtime at ${path}: no OrtApiBase`);
    const baseView = new Deno.UnsafePointerView(base);
    const getApi = new Deno.UnsafeFnPointer(baseView.getPointer(0)!, {
      parameters: ["u32"],
      result: "pointer",
    });
    const getVersion = new Deno.UnsafeFnPointer(baseView.getPointer(8)!, {
      parameters: [],
      result: "pointer",
    });
    this.version = Deno.UnsafePointerView.getCString(getVersion.call()!);
    const api = getApi.call(API_VERSION);
    if (api === null) {
      throw new Error(
        `Cannot use ONNX Runtime at ${path} as it lacks API version ${API_VERSION}: ` +
          `current version is ${this.version}`,
      );
    }
    const table = new Deno.UnsafePointerView(api);
    const fns: Partial<Record<ApiName, unknown>> = {};
    for (const [name, [index, def]] of Object.entries(API)) {
      const fn = table.getPointer(index * 8);
      if (fn === null) throw new Error(`Cannot use ONNX Runtime: OrtApi entry ${name} is null`);
      fns[name as ApiName] = new Deno.UnsafeFnPointer(fn as Deno.PointerObject<typeof def>, def);
    }
    this.fns = fns as Fns;
  }

  /** Throws ORT's message (and frees the status) when `status` is not null. */
  check(status: Deno.PointerValue, what: string): void {
    if (status === null) return;
    const msg = Deno.UnsafePointerView.getCString(this.fns.GetErrorMessage.call(status)!);
    this.fns.ReleaseStatus.call(status);
    throw new Error(`Cannot ${what}: ${msg}`);
  }

  acquireEnv(): Deno.PointerValue {
    if (this.#envUsers === 0) {
      const out = outPointer();
      this.check(
        this.fns.CreateEnv.call(ORT_LOGGING_LEVEL_ERROR, cString("claimbench"), out),
        "create an ORT environment",
      );
      this.#env = pointerAt(out);
    }
    this.#envUsers++;
    return this.#env;
  }

  releaseEnv(): void {
    if (--this.#envUsers === 0) {
      this.fns.ReleaseEnv.call(this.#env);
      this.#env = null;
    }
  }
}

let ort: Ort | null = null;

function loadOrt(): Ort {
  ort ??= new Ort(ortLibraryPath());
  return ort;
}

/** The ONNX Runtime version the FFI path loaded, e.g. `"1.30.0"`. */
export function nativeOrtVersion(): string {
  return loadOrt().version;
}

function elementType(data: NativeTensorData): number {
  if (data instanceof Float32Array) return ELEMENT.float32;
  if (data instanceof Float64Array) return ELEMENT.float64;
  if (data instanceof Int32Array) return ELEMENT.int32;
  if (data instanceof BigInt64Array) return ELEMENT.int64;
  if (data instanceof Uint8Array) return ELEMENT.uint8;
  throw new TypeError("Cannot pass tensor data of this array type to ONNX Runtime");
}

function copyOut(type: number, bytes: ArrayBuffer): NativeTensorData {
  switch (type) {
    case ELEMENT.float32:
      return new Float32Array(bytes);
    case ELEMENT.float64:
      return new Float64Array(bytes);
    case ELEMENT.int32:
      return new Int32Array(bytes);
    case ELEMENT.int64:
      return new BigInt64Array(bytes);
    case ELEMENT.uint8:
    case 9: // bool
      return new Uint8Array(bytes);
    default:
      throw new TypeError(`Cannot read an ORT output of element type ${type}`);
  }
}

const BYTES: Record<number, number> = { 1: 4, 2: 1, 6: 4, 7: 8, 9: 1, 11: 8 };

/**
 * An ORT inference session created through the C API: sequential execution, graph optimisation
 * level ALL, denormals flushed to zero (as `onnx/runtime.ts`), and the given custom-op
 * libraries registered. `run` is synchronous. Call {@linkcode NativeSession.close} when done.
 *
 * @example
 * ```ts ignore
 * const lib = await buildNativeOps();
 * const s = NativeSession.create(graph.toModel(), { threads: 2, customOpLibraries: [lib] });
 * const { y } = s.run({ x: { data: new Float32Array(6), dims: [2, 3] } });
 * s.close();
 * ```
 */
export class NativeSession {
  /** The model's input names, in order. */
  readonly inputNames: readonly string[];
  /** The model's output names, in order. */
  readonly outputNames: readonly string[];
  readonly #ort: Ort;
  #session: Deno.PointerValue;
  #memInfo: Deno.PointerValue;
  readonly #names = new Map<string, Uint8Array<ArrayBuffer>>();

  private constructor(
    ort: Ort,
    session: Deno.PointerValue,
    memInfo: Deno.PointerValue,
    inputs: string[],
    outputs: string[],
  ) {
    this.#ort = ort;
    this.#session = session;
    this.#memInfo = memInfo;
    this.inputNames = inputs;
    this.outputNames = outputs;
    for (const n of [...inputs, ...outputs]) this.#names.set(n, cString(n));
  }

  /** Loads `model` (ONNX bytes) into a new session. */
  static create(model: Uint8Array, opts: NativeSessionOptions = {}): NativeSession {
    const threads = opts.threads ?? 1;
    if (!Number.isInteger(threads) || threads < 1) {
      throw new RangeError(`Cannot create a session with ${threads} threads: need an integer ≥ 1`);
    }
    const o = loadOrt();
    const f = o.fns;
    const env = o.acquireEnv();
    let options: Deno.PointerValue = null;
    let session: Deno.PointerValue = null;
    let memInfo: Deno.PointerValue = null;
    try {
      const out = outPointer();
      o.check(f.CreateSessionOptions.call(out), "create session options");
      options = pointerAt(out);
      o.check(f.SetIntraOpNumThreads.call(options, threads), "set intra-op threads");
      o.check(f.SetInterOpNumThreads.call(options, 1), "set inter-op threads");
      o.check(f.SetSessionExecutionMode.call(options, ORT_SEQUENTIAL), "set execution mode");
      if (opts.profilePrefix !== undefined) {
        o.check(f.EnableProfiling.call(options, cString(opts.profilePrefix)), "enable profiling");
      }
      o.check(
        f.SetSessionGraphOptimizationLevel.call(options, ORT_ENABLE_ALL),
        "set the graph optimisation level",
      );
      o.check(
        f.AddSessionConfigEntry.call(
          options,
          cString("session.set_denormal_as_zero"),
          cString("1"),
        ),
        "flush denormals to zero",
      );
      for (const lib of opts.customOpLibraries ?? []) {
        o.check(
          f.RegisterCustomOpsLibrary_V2.call(options, cString(lib)),
          `register custom ops from ${lib}`,
        );
      }
      o.check(
        f.CreateSessionFromArray.call(
          env,
          model as Uint8Array<ArrayBuffer>,
          BigInt(model.byteLength),
          options,
          out,
        ),
        "create a session",
      );
      session = pointerAt(out);
      o.check(
        f.CreateCpuMemoryInfo.call(ORT_ARENA_ALLOCATOR, ORT_MEM_TYPE_DEFAULT, out),
        "create CPU memory info",
      );
      memInfo = pointerAt(out);
      const inputs = NativeSession.#readNames(o, session, "input");
      const outputs = NativeSession.#readNames(o, session, "output");
      return new NativeSession(o, session, memInfo, inputs, outputs);
    } catch (e) {
      if (memInfo !== null) f.ReleaseMemoryInfo.call(memInfo);
      if (session !== null) f.ReleaseSession.call(session);
      o.releaseEnv();
      throw e;
    } finally {
      // The session keeps what it needs (custom-op libraries stay loaded while it lives).
      if (options !== null) f.ReleaseSessionOptions.call(options);
    }
  }

  static #readNames(o: Ort, session: Deno.PointerValue, kind: "input" | "output"): string[] {
    const f = o.fns;
    const count = new BigUint64Array(1);
    const countFn = kind === "input" ? f.SessionGetInputCount : f.SessionGetOutputCount;
    o.check(countFn.call(session, count), `count the session's ${kind}s`);
    const out = outPointer();
    o.check(f.GetAllocatorWithDefaultOptions.call(out), "get the default allocator");
    const allocator = pointerAt(out); // owned by ORT: never released
    const nameFn = kind === "input" ? f.SessionGetInputName : f.SessionGetOutputName;
    const names: string[] = [];
    for (let i = 0; i < Number(count[0]); i++) {
      o.check(nameFn.call(session, BigInt(i), allocator, out), `read ${kind} name ${i}`);
      const p = pointerAt(out)!;
      names.push(Deno.UnsafePointerView.getCString(p));
      o.check(f.AllocatorFree.call(allocator, p), `free ${kind} name ${i}`);
    }
    return names;
  }

  /**
   * Runs the model on `feeds` (input name → tensor, passed zero-copy: do not modify the arrays
   * during the call); returns the outputs named in `fetches` (default: all) as fresh arrays.
   * An output given in `into` is written in place (its dtype and dims must be the output's):
   * it is returned as is, with no allocation or copy.
   */
  run(
    feeds: Readonly<Record<string, NativeTensor>>,
    fetches: readonly string[] = this.outputNames,
    into: Readonly<Record<string, NativeTensor>> = {},
  ): Record<string, NativeTensor> {
    if (this.#session === null) throw new Error("Cannot run a closed NativeSession");
    const o = this.#ort;
    const f = o.fns;
    const entries = Object.entries(feeds);
    const inNames = new BigUint64Array(entries.length);
    const inValues = new BigUint64Array(entries.length);
    const outNames = new BigUint64Array(fetches.length);
    const outValues = new BigUint64Array(fetches.length);
    const nameOf = (n: string, what: string): bigint => {
      const c = this.#names.get(n);
      if (c === undefined) {
        throw new TypeError(`Cannot run the session with unknown ${what} "${n}"`);
      }
      return Deno.UnsafePointer.value(Deno.UnsafePointer.of(c));
    };
    try {
      entries.forEach(([name, t], i) => {
        inNames[i] = nameOf(name, "input");
        inValues[i] = this.#wrap(t, name);
      });
      fetches.forEach((name, i) => {
        outNames[i] = nameOf(name, "output");
        if (name in into) outValues[i] = this.#wrap(into[name], name);
      });
      o.check(
        f.Run.call(
          this.#session,
          null,
          inNames,
          inValues,
          BigInt(entries.length),
          outNames,
          BigInt(fetches.length),
          outValues,
        ),
        "run the session",
      );
      const result: Record<string, NativeTensor> = {};
      fetches.forEach((name, i) => {
        result[name] = name in into ? into[name] : this.#read(pointerAt(outValues, i), name);
      });
      return result;
    } finally {
      for (const v of [...inValues, ...outValues]) {
        if (v !== 0n) f.ReleaseValue.call(Deno.UnsafePointer.create(v));
      }
    }
  }

  /** An OrtValue over `t`'s memory (not copied; released by the caller). */
  #wrap(t: NativeTensor, name: string): bigint {
    const n = t.dims.reduce((a, b) => a * b, 1);
    if (n !== t.data.length) {
      throw new TypeError(
        `Cannot pass ${name} of shape [${t.dims}] with ${t.data.length} elements`,
      );
    }
    const dims = BigInt64Array.from(t.dims, (d) => BigInt(d));
    const out = outPointer();
    this.#ort.check(
      this.#ort.fns.CreateTensorWithDataAsOrtValue.call(
        this.#memInfo,
        t.data as Uint8Array<ArrayBuffer>,
        BigInt(t.data.byteLength),
        dims,
        BigInt(dims.length),
        elementType(t.data),
        out,
      ),
      `create tensor ${name}`,
    );
    return out[0];
  }

  #read(value: Deno.PointerValue, name: string): NativeTensor {
    const o = this.#ort;
    const f = o.fns;
    const out = outPointer();
    o.check(f.GetTensorTypeAndShape.call(value, out), `read the shape of ${name}`);
    const info = pointerAt(out);
    let type: number;
    let dims: number[];
    try {
      const t = new Int32Array(1);
      o.check(f.GetTensorElementType.call(info, t), `read the type of ${name}`);
      type = t[0];
      const rank = new BigUint64Array(1);
      o.check(f.GetDimensionsCount.call(info, rank), `read the rank of ${name}`);
      const d = new BigInt64Array(Number(rank[0]));
      o.check(f.GetDimensions.call(info, d, BigInt(d.length)), `read the dims of ${name}`);
      dims = Array.from(d, Number);
    } finally {
      f.ReleaseTensorTypeAndShapeInfo.call(info);
    }
    const size = BYTES[type];
    if (size === undefined) throw new TypeError(`Cannot read ${name} of element type ${type}`);
    const bytes = dims.reduce((a, b) => a * b, 1) * size;
    if (bytes === 0) return { data: copyOut(type, new ArrayBuffer(0)), dims };
    o.check(f.GetTensorMutableData.call(value, out), `read the data of ${name}`);
    const view = new Deno.UnsafePointerView(pointerAt(out)!);
    return { data: copyOut(type, view.getArrayBuffer(bytes).slice(0)), dims };
  }

  /** Frees the session; later calls to `run` throw. Closing twice is a no-op. */
  close(): void {
    if (this.#session === null) return;
    const f = this.#ort.fns;
    f.ReleaseMemoryInfo.call(this.#memInfo);
    f.ReleaseSession.call(this.#session);
    this.#session = null;
    this.#memInfo = null;
    this.#ort.releaseEnv();
  }
}

/**
 * The op types of the nodes ONNX Runtime ran in one run of `model` with `feeds` (from a profile
 * of that run, written to a temporary folder and removed): how a test tells that a custom op ran
 * as its native kernel, not as its inlined definition.
 */
export function profiledOpTypes(
  model: Uint8Array,
  feeds: Record<string, NativeTensor>,
  opts: Omit<NativeSessionOptions, "profilePrefix"> = {},
): Set<string> {
  const dir = Deno.makeTempDirSync({ prefix: "claimbench-profile-" });
  try {
    const s = NativeSession.create(model, { ...opts, profilePrefix: `${dir}/run` });
    try {
      s.run(feeds);
    } finally {
      s.close();
    }
    const [file] = [...Deno.readDirSync(dir)].map((e) => e.name);
    const events: { args?: { op_name?: string } }[] = JSON.parse(
      Deno.readTextFileSync(`${dir}/${file}`),
    );
    return new Set(events.flatMap((e) => (e.args?.op_name ? [e.args.op_name] : [])));
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
}

/**
 * Opening an engine: the portable one as it is, the native one after building its op library
 * (`native/build.ts`), each with the version that keys cached models. The result is a value that
 * the CLI puts in the suite context and every session, trainer and evaluator receives; no module
 * remembers an engine.
 * @module
 */
import { createHash } from "node:crypto";
import { buildNativeOps, NATIVE_OPS_FLAGS } from "../native/build.ts";
import { type Engine, nativeEngine, ortVersion, PORTABLE_ENGINE } from "../onnx/runtime.ts";

/** Which engine: `portable` (custom ops as ONNX definitions) or `native` (C++ kernels). */
export type EngineKind = Engine["kind"];

/** The engine kinds, in the order `--engine` lists them. */
export const ENGINE_KINDS: readonly EngineKind[] = ["portable", "native"];

/** An open engine and the version of everything that determines the models it trains. */
export interface EngineInfo extends Engine {
  /** Hash of the engine kind and source (see {@linkcode engineVersion}); keys cached models. */
  readonly version: string;
}

/** The repository root, whose sources {@linkcode engineVersion} hashes. */
const ROOT = new URL("../", import.meta.url);

/**
 * Opens the engine of `kind`: for `native`, builds the op library (g++) and names it; an Error
 * saying why when it cannot be built. Computes the engine's version once, here.
 */
export async function openEngine(kind: EngineKind): Promise<EngineInfo> {
  if (kind === "portable") {
    return Object.freeze({ ...PORTABLE_ENGINE, version: engineVersion("portable") });
  }
  if (kind !== "native") {
    throw new RangeError(
      `Cannot open an engine as kind must be one of ${ENGINE_KINDS.join(", ")}: current value is ${
        JSON.stringify(kind)
      }`,
    );
  }
  let library: string;
  try {
    library = await buildNativeOps();
  } catch (e) {
    throw new Error(
      `Cannot open the native engine as its op library cannot be built: ${(e as Error).message}`,
      { cause: e },
    );
  }
  return Object.freeze({ ...nativeEngine(library), version: engineVersion("native") });
}

/** The folders whose TypeScript sources (tests excluded) shape a trained model. */
const MODEL_SOURCES = ["onnx", "models", "fixtures", "runner", "suites"] as const;

/**
 * A hash of everything that determines a trained model besides its configuration: the engine
 * kind; the ONNX Runtime version (`runtime`, onnxruntime-node's by default); for `native`, the
 * compiler flags and every file under `native/` but the TypeScript (its kernels, headers and
 * registration); and the TypeScript sources (tests excluded) of `onnx/`, `models/`, `fixtures/`,
 * `runner/` (the training loop) and `suites/` (their configs and the jobs built from them),
 * subfolders included. Suites are read as bytes, not imported. Files are hashed with their
 * paths, sorted by path, so editing, adding or removing one, switching engines or upgrading ONNX
 * Runtime invalidates cached models. `root` is the repository root (tests pass a folder of their
 * own).
 */
export function engineVersion(
  kind: EngineKind,
  root: URL = ROOT,
  runtime: string = ortVersion(),
): string {
  const h = createHash("sha256");
  h.update(`engine ${kind}\n`);
  h.update(`onnxruntime ${runtime}\n`);
  const hashFiles = (paths: string[]) => {
    for (const path of paths) {
      h.update(`${path}\n`);
      h.update(Deno.readFileSync(new URL(path, root)));
    }
  };
  if (kind === "native") {
    h.update(`${NATIVE_OPS_FLAGS.join(" ")}\n`);
    hashFiles(filesUnder(root, "native", (name) => !name.endsWith(".ts")));
  }
  const source = (name: string) => name.endsWith(".ts") && !name.endsWith("_test.ts");
  for (const dir of MODEL_SOURCES) hashFiles(filesUnder(root, dir, source));
  return h.digest("hex").slice(0, 16);
}

/** Paths (relative to `root`, `/`-separated, sorted) of the files under `dir` that `keep`. */
function filesUnder(root: URL, dir: string, keep: (name: string) => boolean): string[] {
  const out: string[] = [];
  const walk = (rel: string) => {
    for (const entry of Deno.readDirSync(new URL(`${rel}/`, root))) {
      const path = `${rel}/${entry.name}`;
      if (entry.isDirectory) walk(path);
      else if (entry.isFile && keep(entry.name)) out.push(path);
    }
  };
  walk(dir);
  return out.sort();
}

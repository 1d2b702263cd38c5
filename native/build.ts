/**
 * Builds claimbench's native libraries from `native/` (layout in `native/README.md`):
 *
 * - the C++ custom-op library (`registry.cc` and `kernels/*.cc`, headers in `include/`) with g++
 *   into `.cache/native/libclaimbench_ops.so`, for `onnx/native_session.ts` to register;
 * - the CUDA library (`cuda/*.cu`) with nvcc into `.cache/native/libclaimbench_cuda.so`, wherever
 *   nvcc exists.
 *
 * C++ flags: `-O2 -fPIC -shared -std=c++17 -ffp-contract=off` and no `-march`, so that every
 * x86-64 machine computes the same bits: no FMA contraction, baseline SSE2 code, and AVX2 and
 * AVX-512F paths (picked at run time) that perform the same operations in the same order.
 *
 * `deno run --allow-run --allow-read --allow-write native/build.ts` prints the libraries' paths.
 * @module
 */
import { fileURLToPath } from "node:url";

const NATIVE_DIR = fileURLToPath(new URL("./", import.meta.url));
const CACHE_DIR = fileURLToPath(new URL("../.cache/native/", import.meta.url));

/** Where the built op library goes. */
export const NATIVE_OPS_LIBRARY: string = `${CACHE_DIR}libclaimbench_ops.so`;

/** Where the built CUDA library goes. */
export const CUDA_OPS_LIBRARY: string = `${CACHE_DIR}libclaimbench_cuda.so`;

/** The g++ flags the op library is built with. */
export const NATIVE_OPS_FLAGS: readonly string[] = [
  "-O2",
  "-fPIC",
  "-shared",
  "-std=c++17",
  "-ffp-contract=off",
  // sqrt without errno: one correctly rounded instruction (AdamW's), never a libm call.
  "-fno-math-errno",
];

/**
 * The nvcc flags the CUDA library is built with: machine code for A100 (sm_80) and H100/H200
 * (sm_90), plus compute_90 PTX that newer GPUs compile when they load it. nvcc takes about 1–2 s
 * per architecture and file.
 */
export const CUDA_OPS_FLAGS: readonly string[] = [
  "-O2",
  "-shared",
  "-Xcompiler",
  "-fPIC",
  "--cudart",
  "static",
  "-gencode",
  "arch=compute_80,code=sm_80",
  "-gencode",
  "arch=compute_90,code=[sm_90,compute_90]",
];

/** File endings of the sources and headers under `native/`. */
const SOURCE_ENDINGS = [".cc", ".h", ".cu", ".cuh"];

/**
 * Every source and header file under `native/` (C++, CUDA; not the TypeScript), sorted: what
 * the libraries are built from.
 */
export function nativeSourceFiles(): string[] {
  const files: string[] = [];
  const walk = (dir: string) => {
    for (const entry of Deno.readDirSync(dir)) {
      const path = `${dir}${entry.name}`;
      if (entry.isDirectory) walk(`${path}/`);
      else if (SOURCE_ENDINGS.some((end) => entry.name.endsWith(end))) files.push(path);
    }
  };
  walk(NATIVE_DIR);
  return files.sort();
}

async function mtime(path: string): Promise<number | null> {
  try {
    return (await Deno.stat(path)).mtime?.getTime() ?? null;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw e;
  }
}

/** Whether `library` exists and is newer than every file of `inputs`. */
async function upToDate(library: string, inputs: string[]): Promise<boolean> {
  const out = await mtime(library);
  if (out === null) return false;
  for (const input of inputs) {
    const src = await mtime(input);
    if (src === null || src >= out) return false;
  }
  return true;
}

/** Runs `cmd args`; throws with its stderr when it fails, with `missing` when it is absent. */
async function run(cmd: string, args: string[], missing: string): Promise<void> {
  let result: Deno.CommandOutput;
  try {
    result = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).output();
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) throw new Error(missing);
    throw e;
  }
  if (!result.success) {
    const stderr = new TextDecoder().decode(result.stderr);
    throw new Error(`Cannot build native ops as ${cmd} failed (exit ${result.code}):\n${stderr}`);
  }
}

/**
 * Writes `library` with `write(tmp)`, which builds into a temporary file in the output folder;
 * the file is renamed into place when complete, so concurrent builds and readers never see a
 * partial library.
 */
async function buildAtomically(
  library: string,
  write: (tmp: string) => Promise<void>,
): Promise<void> {
  await Deno.mkdir(CACHE_DIR, { recursive: true });
  const name = library.slice(library.lastIndexOf("/") + 1, -".so".length);
  const tmp = await Deno.makeTempFile({ dir: CACHE_DIR, prefix: `.${name}.`, suffix: ".so" });
  try {
    await write(tmp);
    await Deno.rename(tmp, library);
  } catch (e) {
    await Deno.remove(tmp).catch(() => {});
    throw e;
  }
}

const GXX_MISSING =
  "Cannot build native ops as g++ is not installed (Debian/Ubuntu: apt-get install g++)";

/**
 * Compiles the op library unless it is newer than every C++ source and header under `native/`;
 * returns its path. The `.cc` files compile in parallel (as many at once as there are CPUs,
 * largest first), then link into one library.
 */
export async function buildNativeOps(): Promise<string> {
  const inputs = nativeSourceFiles().filter((f) => f.endsWith(".cc") || f.endsWith(".h"));
  const sources = inputs.filter((f) => f.endsWith(".cc"));
  if (!sources.some((f) => f.endsWith("/registry.cc"))) {
    throw new Error(`Cannot build native ops as the source is missing: ${NATIVE_DIR}registry.cc`);
  }
  if (await upToDate(NATIVE_OPS_LIBRARY, inputs)) return NATIVE_OPS_LIBRARY;

  const sizes = new Map(
    await Promise.all(sources.map(async (f) => [f, (await Deno.stat(f)).size] as const)),
  );
  const queue = [...sources].sort((a, b) => sizes.get(b)! - sizes.get(a)!);
  await buildAtomically(NATIVE_OPS_LIBRARY, async (tmp) => {
    const objects = await Deno.makeTempDir({ dir: CACHE_DIR, prefix: ".objects." });
    try {
      // Object i of source i: kernels/gelu.cc and a future gelu.cc elsewhere cannot collide.
      const object = (src: string) => `${objects}/${sources.indexOf(src)}.o`;
      const worker = async () => {
        for (let src = queue.shift(); src !== undefined; src = queue.shift()) {
          try {
            await run("g++", [...NATIVE_OPS_FLAGS, "-c", "-o", object(src), src], GXX_MISSING);
          } catch (e) {
            queue.length = 0; // start no more: the build has failed
            throw e;
          }
        }
      };
      const jobs = Math.max(1, Math.min(navigator.hardwareConcurrency, sources.length));
      await Promise.all(Array.from({ length: jobs }, worker));
      await run("g++", [...NATIVE_OPS_FLAGS, "-o", tmp, ...sources.map(object)], GXX_MISSING);
    } finally {
      await Deno.remove(objects, { recursive: true }).catch(() => {});
    }
  });
  return NATIVE_OPS_LIBRARY;
}

/** Whether nvcc runs. */
async function hasNvcc(): Promise<boolean> {
  try {
    const { success } = await new Deno.Command("nvcc", {
      args: ["--version"],
      stdout: "null",
      stderr: "null",
    }).output();
    return success;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}

/**
 * Compiles the CUDA library (every `native/cuda/*.cu`) with nvcc unless it is newer than every
 * CUDA source and header under `native/`; returns its path, or null where nvcc is not on PATH.
 * The library loads without a GPU: its `ClaimbenchCudaDeviceCount()` then returns a negative
 * CUDA error code.
 */
export async function buildCudaOps(): Promise<string | null> {
  if (!await hasNvcc()) return null;
  const inputs = nativeSourceFiles().filter((f) => !f.endsWith(".cc"));
  const sources = inputs.filter((f) => f.startsWith(`${NATIVE_DIR}cuda/`) && f.endsWith(".cu"));
  if (sources.length === 0) {
    throw new Error(`Cannot build CUDA ops as ${NATIVE_DIR}cuda/ holds no .cu file`);
  }
  if (await upToDate(CUDA_OPS_LIBRARY, inputs)) return CUDA_OPS_LIBRARY;
  await buildAtomically(CUDA_OPS_LIBRARY, async (tmp) => {
    await run("nvcc", [...CUDA_OPS_FLAGS, "-o", tmp, ...sources], "nvcc is not installed");
  });
  return CUDA_OPS_LIBRARY;
}

if (import.meta.main) {
  console.log(await buildNativeOps());
  console.log(await buildCudaOps() ?? "(no nvcc: CUDA library not built)");
}

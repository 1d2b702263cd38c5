/**
 * Builds claimbench's native custom-op library (`native/claimbench_ops.cc`) with g++ into
 * `.cache/native/libclaimbench_ops.so`, for `onnx/native_session.ts` to register.
 *
 * Flags: `-O2 -fPIC -shared -std=c++17 -ffp-contract=off` and no `-march`, so that every x86-64
 * machine computes the same bits: no FMA contraction, baseline SSE2 code, and AVX2 and AVX-512F
 * paths (picked at run time) that perform the same operations in the same order.
 *
 * `deno run --allow-run --allow-read --allow-write native/build.ts` prints the library's path.
 * @module
 */
import { fileURLToPath } from "node:url";

/** The C++ source of the library. */
export const NATIVE_OPS_SOURCE: string = fileURLToPath(
  new URL("./claimbench_ops.cc", import.meta.url),
);

/** Where the built library goes. */
export const NATIVE_OPS_LIBRARY: string = fileURLToPath(
  new URL("../.cache/native/libclaimbench_ops.so", import.meta.url),
);

/** The g++ flags the library is built with. */
export const NATIVE_OPS_FLAGS: readonly string[] = [
  "-O2",
  "-fPIC",
  "-shared",
  "-std=c++17",
  "-ffp-contract=off",
  // sqrt without errno: one correctly rounded instruction (AdamW's), never a libm call.
  "-fno-math-errno",
];

async function mtime(path: string): Promise<number | null> {
  try {
    return (await Deno.stat(path)).mtime?.getTime() ?? null;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw e;
  }
}

/**
 * Compiles the library unless it is newer than its source; returns its path. The compiler
 * writes a temporary file in the output folder, renamed into place when complete, so concurrent
 * builds and readers never see a partial library.
 */
export async function buildNativeOps(): Promise<string> {
  const src = await mtime(NATIVE_OPS_SOURCE);
  if (src === null) {
    throw new Error(`Cannot build native ops as the source is missing: ${NATIVE_OPS_SOURCE}`);
  }
  const out = await mtime(NATIVE_OPS_LIBRARY);
  if (out !== null && out > src) return NATIVE_OPS_LIBRARY;

  const dir = fileURLToPath(new URL("../.cache/native/", import.meta.url));
  await Deno.mkdir(dir, { recursive: true });
  const tmp = await Deno.makeTempFile({ dir, prefix: ".libclaimbench_ops.", suffix: ".so" });
  try {
    let result: Deno.CommandOutput;
    try {
      result = await new Deno.Command("g++", {
        args: [...NATIVE_OPS_FLAGS, "-o", tmp, NATIVE_OPS_SOURCE],
        stdout: "piped",
        stderr: "piped",
      }).output();
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) {
        throw new Error(
          "Cannot build native ops as g++ is not installed (Debian/Ubuntu: apt-get install g++)",
        );
      }
      throw e;
    }
    if (!result.success) {
      const stderr = new TextDecoder().decode(result.stderr);
      throw new Error(`Cannot build native ops as g++ failed (exit ${result.code}):\n${stderr}`);
    }
    await Deno.rename(tmp, NATIVE_OPS_LIBRARY);
  } catch (e) {
    await Deno.remove(tmp).catch(() => {});
    throw e;
  }
  return NATIVE_OPS_LIBRARY;
}

if (import.meta.main) {
  console.log(await buildNativeOps());
}

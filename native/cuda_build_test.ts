import { assert, assertEquals } from "@std/assert";
import { buildCudaOps } from "./build.ts";

/**
 * `-ClaimbenchCudaDeviceCount()` on a machine without a usable GPU: cudaErrorStubLibrary (34,
 * only the toolkit's stub driver), cudaErrorInsufficientDriver (35, no driver), cudaErrorNoDevice
 * (100).
 */
const NO_GPU_ERRORS = [34, 35, 100];

/** Whether nvcc runs here, asked independently of build.ts. */
async function nvccRuns(): Promise<boolean> {
  try {
    const cmd = new Deno.Command("nvcc", { args: ["--version"], stdout: "null", stderr: "null" });
    return (await cmd.output()).success;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}

Deno.test("buildCudaOps builds a loadable CUDA library where nvcc exists, and gives null where not", async () => {
  const library = await buildCudaOps();
  if (!await nvccRuns()) {
    assertEquals(library, null);
    return;
  }
  assert(library !== null, "nvcc runs, so the CUDA library must build");
  const lib = Deno.dlopen(library, {
    ClaimbenchCudaDeviceCount: { parameters: [], result: "i32" },
  });
  try {
    const count = lib.symbols.ClaimbenchCudaDeviceCount();
    assert(Number.isInteger(count), `device count ${count}`);
    assert(count >= 0 || NO_GPU_ERRORS.includes(-count), `unexpected CUDA error ${-count}`);
  } finally {
    lib.close();
  }
});

import { assert, assertEquals } from "@std/assert";
import { buildCudaOps } from "./build.ts";
import { openCudaMetricAttention, openCudaScan } from "./cuda_ops.ts";

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

Deno.test("the CUDA selective scan refuses a bad shape before touching the device", async () => {
  const library = await buildCudaOps();
  if (library === null) return; // no nvcc: nothing built (the test above checks that)
  const lib = openCudaScan(library);
  try {
    const f = new Float32Array(64);
    const ok = BigInt64Array.of(2n, 1n, 4n, 8n); // [B, 1, N, L] for B 2, N 4, L 8
    const bad = BigInt64Array.of(3n, 1n, 4n, 8n); // batch 3 broadcasts to neither 1 nor 2
    const run = (b: BigInt64Array) =>
      lib.symbols.ClaimbenchSelectiveScanHost(f, f, f, f, b, f, ok, 2n, 3n, 8n, 4n, f, f);
    assertEquals(run(bad), -1000);
    const good = run(ok); // runs where there is a GPU, else a CUDA error
    assert(good === 0 || NO_GPU_ERRORS.includes(-good), `good shape: ${good}`);
  } finally {
    lib.close();
  }
});

Deno.test("the CUDA metric attention refuses bad sizes and arguments before touching the device", async () => {
  const library = await buildCudaOps();
  if (library === null) return; // no nvcc: nothing built
  const lib = openCudaMetricAttention(library);
  try {
    const f = new Float32Array(64);
    const forward = (T: bigint, K: bigint) =>
      lib.symbols.ClaimbenchMetricAttentionHost(f, f, f, 0.5, 1n, 1n, T, K, f);
    assertEquals(forward(4n, 65n), -1001); // K above 64
    assertEquals(forward(4n, 0n), -1001);
    assertEquals(forward(0n, 4n), -1000); // T below 1
    const grad = lib.symbols.ClaimbenchMetricAttentionGradHost(
      f,
      f,
      f,
      f,
      0.5,
      0n,
      1n,
      4n,
      4n,
      f,
      f,
    );
    assertEquals(grad, -1000); // B below 1
    assertEquals(lib.symbols.ClaimbenchMetricAttentionWorkspaceBytes(1n, 1n, 4n, 65n), -1001n);
    const ms = new Float64Array(1);
    assertEquals(lib.symbols.ClaimbenchMetricAttentionTime(1n, 1n, 4n, 4n, 1, 0, 0, ms), -1004);
    const good = forward(4n, 4n); // runs where there is a GPU, else a CUDA error
    assert(good === 0 || NO_GPU_ERRORS.includes(-good), `good shape: ${good}`);
  } finally {
    lib.close();
  }
});

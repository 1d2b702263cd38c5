import { assertEquals, assertMatch, assertNotEquals, assertStringIncludes } from "@std/assert";
import { ortVersion } from "../onnx/runtime.ts";
import { engineVersion, openEngine } from "./engine.ts";

/** A repository-shaped folder: sources, a test, a subfolder, native sources and build.ts. */
async function tree(): Promise<{ root: URL; write(path: string, text: string): void }> {
  const dir = await Deno.makeTempDir();
  const root = new URL(`file://${dir}/`);
  const write = (path: string, text: string) => {
    const url = new URL(path, root);
    Deno.mkdirSync(new URL("./", url), { recursive: true });
    Deno.writeTextFileSync(url, text);
  };
  write("onnx/graph.ts", "graph");
  write("onnx/graph_test.ts", "test");
  write("onnx/custom/gelu.ts", "gelu");
  write("models/transformer.ts", "model");
  write("fixtures/prng.ts", "prng");
  write("runner/trainer.ts", "trainer");
  write("suites/copy_arms.ts", "arms");
  write("suites/copy_arms_test.ts", "test");
  write("native/build.ts", "build");
  write("native/registry.cc", "registry");
  write("native/kernels/gelu.cc", "kernel");
  return { root, write };
}

Deno.test("the engine version covers sources in subfolders and native files, not tests or build.ts", async () => {
  const { root, write } = await tree();
  try {
    const versions = () => [engineVersion("portable", root), engineVersion("native", root)];
    const [portable, native] = versions();
    assertMatch(portable, /^[0-9a-f]{16}$/);
    assertNotEquals(portable, native);
    write("onnx/graph_test.ts", "another test");
    write("native/build.ts", "another build script");
    assertEquals(versions(), [portable, native]);
    write("native/kernels/gelu.cc", "another kernel");
    const [portable2, native2] = versions();
    assertEquals(portable2, portable);
    assertNotEquals(native2, native);
    write("onnx/custom/gelu.ts", "another gelu");
    const [portable3, native3] = versions();
    assertNotEquals(portable3, portable);
    assertNotEquals(native3, native2);
    write("fixtures/extra/new.ts", "a new file");
    assertNotEquals(engineVersion("portable", root), portable3);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("the engine version covers suites/ and runner/ sources and the ONNX Runtime version", async () => {
  const { root, write } = await tree();
  try {
    const portable = engineVersion("portable", root);
    assertEquals(portable, engineVersion("portable", root, ortVersion()));
    assertMatch(ortVersion(), /^\d+\.\d+\.\d+/);
    assertNotEquals(engineVersion("portable", root, "0.0.0"), portable);
    write("suites/copy_arms_test.ts", "another test");
    assertEquals(engineVersion("portable", root), portable);
    write("suites/copy_arms.ts", "arms with another learning rate");
    const portable2 = engineVersion("portable", root);
    assertNotEquals(portable2, portable);
    write("runner/trainer.ts", "another training loop");
    assertNotEquals(engineVersion("portable", root), portable2);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("openEngine() gives each kind its library and version", async () => {
  const portable = await openEngine("portable");
  assertEquals([portable.kind, portable.library], ["portable", null]);
  assertEquals(portable.version, engineVersion("portable"));
  const native = await openEngine("native");
  assertEquals(native.kind, "native");
  assertStringIncludes(native.library ?? "", "libclaimbench_ops.so");
  assertEquals(native.version, engineVersion("native"));
  assertNotEquals(native.version, portable.version);
});

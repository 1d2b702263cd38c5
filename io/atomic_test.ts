import { assertEquals, assertRejects } from "@std/assert";
import { writeFileAtomic } from "./atomic.ts";

Deno.test("writeFileAtomic() writes text and bytes and leaves no temporary file", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await writeFileAtomic(`${dir}/a.txt`, "old");
    await writeFileAtomic(`${dir}/a.txt`, "new");
    await writeFileAtomic(`${dir}/b.bin`, new Uint8Array([1, 2, 3]));
    assertEquals(await Deno.readTextFile(`${dir}/a.txt`), "new");
    assertEquals(await Deno.readFile(`${dir}/b.bin`), new Uint8Array([1, 2, 3]));
    const names = [];
    for await (const entry of Deno.readDir(dir)) names.push(entry.name);
    assertEquals(names.sort(), ["a.txt", "b.bin"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("writeFileAtomic() rejects when the directory is missing", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await assertRejects(() => writeFileAtomic(`${dir}/missing/a.txt`, "x"), Deno.errors.NotFound);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

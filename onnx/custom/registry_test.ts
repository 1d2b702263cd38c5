import { assert, assertEquals, assertLess } from "@std/assert";
import { Prng } from "../../fixtures/prng.ts";
import { buildNativeOps } from "../../native/build.ts";
import { nativeOpTable } from "../../native/op_table.ts";
import * as mod from "../../mod.ts";
import { Graph, type TensorArray, toTypedArray } from "../graph.ts";
import { gradCheck } from "../gradcheck.ts";
import { GRADIENTS } from "../gradients.ts";
import { NativeSession, type NativeTensor, profiledOpTypes } from "../native_session.ts";
import { Session, tensor } from "../runtime.ts";
import { CUSTOM_DOMAIN, type CustomOp } from "./kit.ts";
import { CUSTOM_OPS } from "./registry.ts";

const LIB = await buildNativeOps();

/** A seeded uniform [0, 1) source per label, so each check draws its own numbers. */
function rng(label: string): () => number {
  let seed = 0;
  for (const ch of label) seed = (seed * 31 + ch.charCodeAt(0)) >>> 0;
  const p = new Prng(seed);
  return () => p.nextFloat();
}

// Every registered op's gradient rule against central finite differences (1e-6 relative in
// float64, unless its case says otherwise).
for (const op of CUSTOM_OPS) {
  if (op.gradCheck === "not differentiable") continue;
  op.gradCheck.forEach((c, i, all) => {
    const label = all.length > 1 ? `${op.name} (case ${i + 1})` : op.name;
    Deno.test(`gradient of ${label} matches central finite differences`, async () => {
      const r = await gradCheck(c, rng(label));
      assertLess(r.maxError, c.tolerance ?? 1e-6, JSON.stringify(r.worst));
    });
  });
}

/** A model of one node of `op` as its kernel check builds it, with seeded input data. */
function kernelModel(op: CustomOp): { model: Uint8Array; feeds: Record<string, NativeTensor> } {
  const check = op.kernel!;
  const g = new Graph(`${op.name} check`);
  const xs = check.inputs.map((inp, i) => g.input(`x${i}`, inp.dtype ?? "float32", inp.shape));
  const ys = check.build(xs);
  ys.forEach((y, i) => g.output(y, `y${i}`));
  const uniform = rng(op.name);
  const feeds: Record<string, NativeTensor> = {};
  check.inputs.forEach((inp, i) => {
    const n = inp.shape.reduce((a, b) => a * b, 1);
    const data = inp.data ?? Array.from({ length: n }, () => uniform() * 2 - 1);
    feeds[`x${i}`] = { data: toTypedArray(data, inp.dtype ?? "float32"), dims: inp.shape };
  });
  return { model: g.toModel(), feeds };
}

/** Whether a native session of `model` ran `op`'s kernel (ORT's profile names each node's op). */
function ranNative(model: Uint8Array, feeds: Record<string, NativeTensor>, op: string): boolean {
  return profiledOpTypes(model, feeds, { customOpLibraries: [LIB] }).has(op);
}

// Every op with a native kernel against its traced definition, on 1 and 2 threads: the same
// bits where the kernel promises them (at the SSE2 and AVX2 widths too), else within its stated
// error.
for (const op of CUSTOM_OPS) {
  if (!op.kernel) continue;
  const agreement = op.kernel.agreement;
  Deno.test(`${op.name}: native kernel agrees with its definition (${agreement})`, async () => {
    const { model, feeds } = kernelModel(op);
    const portable = await Session.create(model, { threads: 1 });
    const want = await portable.run(
      Object.fromEntries(
        Object.entries(feeds).map(([k, t]) => [
          k,
          tensor(t.data instanceof Int32Array ? "int32" : "float32", t.data as TensorArray, t.dims),
        ]),
      ),
    );
    await portable.release();
    const runs: [number, string | undefined][] = agreement === "bits"
      ? [[1, undefined], [2, undefined], [1, "sse2"], [2, "avx2"]]
      : [[1, undefined], [2, undefined]];
    for (const [threads, simd] of runs) {
      // The kernel reads the cap when ORT creates it.
      if (simd) Deno.env.set("CLAIMBENCH_NATIVE_SIMD", simd);
      let s: NativeSession;
      try {
        s = NativeSession.create(model, { threads, customOpLibraries: [LIB] });
      } finally {
        Deno.env.delete("CLAIMBENCH_NATIVE_SIMD");
      }
      const got = s.run(feeds);
      s.close();
      for (const [k, w] of Object.entries(want)) {
        const a = got[k].data as Float32Array;
        const b = w.data as Float32Array;
        assertEquals(got[k].dims, w.dims, `${k} dims`);
        if (agreement === "bits") {
          const first = new Uint32Array(a.slice().buffer).findIndex((v, i) =>
            v !== new Uint32Array(b.slice().buffer)[i]
          );
          const at = `${k}, ${threads} threads${simd ? `, ${simd}` : ""}`;
          assertEquals(first, -1, `${at}: element ${first} differs`);
        } else {
          let e = 0;
          a.forEach((v, i) => (e = Math.max(e, Math.abs(v - b[i]) / (1 + Math.abs(b[i])))));
          assertLess(e, agreement, `${k}, ${threads} threads`);
        }
      }
    }
    assert(ranNative(model, feeds, op.name), "the native kernel ran, not the definition");
  });
}

Deno.test("the native library registers exactly the ops that declare a kernel, with their arities", () => {
  const declared = CUSTOM_OPS.filter((op) => op.kernel)
    .map((op) => ({ name: op.name, inputs: op.inputs.length, outputs: op.outputs.length }))
    .sort((a, b) => (a.name < b.name ? -1 : 1));
  assertEquals(nativeOpTable(LIB), declared);
});

Deno.test("every registered op has its rule in the gradient table", () => {
  for (const op of CUSTOM_OPS) assert(GRADIENTS[op.name] === op.gradient, op.name);
});

Deno.test("every CustomOp a family file exports is registered, once", async () => {
  const dir = new URL("./", import.meta.url);
  const families = [...Deno.readDirSync(dir)].map((e) => e.name)
    .filter((n) => n.endsWith(".ts") && !n.endsWith("_test.ts"))
    .filter((n) => n !== "kit.ts" && n !== "registry.ts");
  const declared: string[] = [];
  for (const f of families) {
    for (const v of Object.values(await import(new URL(f, dir).href))) {
      if (v && typeof v === "object" && "gradient" in v && "inputs" in v && "name" in v) {
        assert(CUSTOM_OPS.includes(v as (typeof CUSTOM_OPS)[number]), `${f}: ${v.name}`);
        declared.push((v as CustomOp).name);
      }
    }
  }
  assertEquals(declared.sort(), CUSTOM_OPS.map((op) => op.name).sort());
});

Deno.test("mod.ts exports every registered op", () => {
  const exported = new Set(Object.values(mod));
  for (const op of CUSTOM_OPS) assert(exported.has(op), `${op.name} is not exported`);
});

Deno.test("a definition is traced with the op's formal names, in its domain", () => {
  for (const op of CUSTOM_OPS.filter((o) => o.kernel)) {
    const g = new Graph("trace");
    const check = op.kernel!;
    const xs = check.inputs.map((inp, i) => g.input(`x${i}`, inp.dtype ?? "float32", inp.shape));
    check.build(xs);
    const node = g.nodes.find((n) => n.op === op.name)!;
    assertEquals(node.domain, CUSTOM_DOMAIN);
    assertEquals(node.inputs.length, op.inputs.length, op.name);
    assertEquals(node.outputs.length, op.outputs.length, op.name);
  }
});

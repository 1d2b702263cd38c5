import { assertLess } from "@std/assert";
import { Prng } from "../fixtures/prng.ts";
import type { Value } from "./graph.ts";
import { gradCheck, type GradCheckCase } from "./gradcheck.ts";
import * as op from "./ops.ts";
import { GRADIENTS } from "./gradients.ts";

// Every primitive gets a finite-difference check: a primitive missing here does not compile (the
// custom ops' checks come with them, through `onnx/custom/registry_test.ts`).
// Tolerances: float64 cases use 1e-6 relative; float32 cases (ORT has no float64 kernel for
// Erf/Gelu) use a step of 1e-2, whose truncation error bounds agreement near 2e-3.
const F64 = 1e-6;
const F32 = 3e-3;

const CASES: Record<op.PrimitiveOp, GradCheckCase | GradCheckCase[] | "not differentiable"> = {
  Add: {
    dtype: "float64",
    inputs: [{ shape: [2, 3] }, { shape: [3] }],
    build: ([a, b]) => op.add(a, b),
  },
  Sub: {
    dtype: "float64",
    inputs: [{ shape: [2, 1, 3] }, { shape: [4, 1] }],
    build: ([a, b]) => op.sub(a, b),
  },
  Mul: {
    dtype: "float64",
    inputs: [{ shape: [2, 3] }, { shape: [2, 1] }],
    build: ([a, b]) => op.mul(a, b),
  },
  Div: {
    dtype: "float64",
    inputs: [{ shape: [2, 3] }, { shape: [3], data: [1.5, -2, 0.7] }],
    build: ([a, b]) => op.div(a, b),
  },
  Pow: {
    dtype: "float64",
    inputs: [{ shape: [2, 2], data: [0.5, 1.2, 2, 0.9] }, { shape: [2], data: [1.5, -0.5] }],
    build: ([a, b]) => op.pow(a, b),
  },
  Max: {
    dtype: "float64",
    inputs: [{ shape: [2, 3] }, { shape: [3] }],
    build: ([a, b]) => op.max(a, b),
  },
  Min: {
    dtype: "float64",
    inputs: [{ shape: [2, 3] }, { shape: [2, 3] }],
    build: ([a, b]) => op.min(a, b),
  },
  Neg: { dtype: "float64", inputs: [{ shape: [4] }], build: ([a]) => op.neg(a) },
  Exp: { dtype: "float64", inputs: [{ shape: [4] }], build: ([a]) => op.exp(a) },
  Log: {
    dtype: "float64",
    inputs: [{ shape: [3], data: [0.3, 1.5, 4] }],
    build: ([a]) => op.log(a),
  },
  Sqrt: {
    dtype: "float64",
    inputs: [{ shape: [3], data: [0.3, 1.5, 4] }],
    build: ([a]) => op.sqrt(a),
  },
  Erf: { dtype: "float32", tolerance: F32, inputs: [{ shape: [5] }], build: ([a]) => op.erf(a) },
  Tanh: { dtype: "float64", inputs: [{ shape: [4] }], build: ([a]) => op.tanh(a) },
  Sigmoid: { dtype: "float64", inputs: [{ shape: [4] }], build: ([a]) => op.sigmoid(a) },
  // ONNX Runtime has Softplus in float32 only.
  Softplus: {
    dtype: "float32",
    inputs: [{ shape: [5], data: [-30, -4, 0.3, 5, 40] }],
    build: ([a]) => op.softplus(a),
    tolerance: 1e-3,
  },
  Relu: {
    dtype: "float64",
    inputs: [{ shape: [4], data: [-0.5, 0.3, 1.2, -2] }],
    build: ([a]) => op.relu(a),
  },
  Gelu: {
    dtype: "float32",
    tolerance: F32,
    inputs: [{ shape: [2, 3] }],
    build: ([a]) => op.gelu(op.mul(a, 2)),
  },
  Identity: { dtype: "float64", inputs: [{ shape: [3] }], build: ([a]) => op.identity(a) },
  Cast: {
    dtype: "float64",
    inputs: [{ shape: [3] }],
    build: ([a]) => op.cast(op.mul(op.cast(a, "float32"), op.cast(a, "float32")), "float64"),
    step: 1e-3, // the float32 round trip rounds away smaller steps
    tolerance: 1e-5,
  },
  MatMul: {
    dtype: "float64",
    inputs: [{ shape: [2, 3, 4] }, { shape: [4, 2] }],
    build: ([a, b]) => op.matMul(a, b),
  },
  // Each transpose combination, with a broadcast batch; float32 (ORT's kernel), but bilinear, so
  // central differences are exact up to rounding.
  FusedMatMul: [[false, false], [false, true], [true, false], [true, true]].map(([tA, tB]) => ({
    dtype: "float32" as const,
    tolerance: F32,
    inputs: [{ shape: tA ? [2, 4, 3] : [2, 3, 4] }, { shape: tB ? [1, 5, 4] : [1, 4, 5] }],
    build: ([a, b]: Value[]) => op.fusedMatMul(a, b, { transA: tA, transB: tB, alpha: 0.7 }),
  })),
  Gather: {
    dtype: "float64",
    inputs: [{ shape: [5, 3] }, { shape: [2, 2], dtype: "int64", data: [4, 0, 4, 2] }],
    build: ([t, i]) => op.gather(t, i, { axis: 0 }),
  },
  Reshape: {
    dtype: "float64",
    inputs: [{ shape: [2, 6] }],
    build: ([a]) => op.mul(op.reshape(a, [3, -1]), op.reshape(a, [3, 4])),
  },
  Transpose: {
    dtype: "float64",
    inputs: [{ shape: [2, 3, 4] }],
    build: ([a]) => op.transpose(a, [2, 0, 1]),
  },
  Slice: {
    dtype: "float64",
    inputs: [{ shape: [4, 5] }],
    build: ([a]) => op.slice(a, [1, -3], [3, 100], [0, 1]),
  },
  Concat: {
    dtype: "float64",
    inputs: [{ shape: [2, 3] }, { shape: [2, 1] }],
    build: ([a, b]) => op.concat([a, b, a], 1),
  },
  Split: {
    dtype: "float64",
    inputs: [{ shape: [5, 2] }],
    build: ([a]) => {
      const [p, , r] = op.split(a, [2, 1, 2], 0); // the middle piece gets no gradient
      return op.mul(p, r);
    },
  },
  Pad: {
    dtype: "float64",
    inputs: [{ shape: [2, 3] }],
    build: ([a]) => op.mul(op.pad(a, [0, 2, 1, 1]), 3),
  },
  Expand: {
    dtype: "float64",
    inputs: [{ shape: [3, 1] }],
    build: ([a]) => op.expand(a, [2, 3, 4]),
  },
  Unsqueeze: {
    dtype: "float64",
    inputs: [{ shape: [3, 2] }],
    build: ([a]) => op.unsqueeze(a, [0, 2]),
  },
  Squeeze: {
    dtype: "float64",
    inputs: [{ shape: [3, 1, 2] }],
    build: ([a]) => op.squeeze(a, [1]),
  },
  ReduceSum: {
    dtype: "float64",
    inputs: [{ shape: [2, 3, 4] }],
    build: ([a]) => op.reduceSum(a, [0, 2], { keepdims: true }),
  },
  ReduceMean: {
    dtype: "float64",
    inputs: [{ shape: [2, 3, 4] }],
    build: ([a]) => op.reduceMean(a, [1]),
  },
  ReduceMax: {
    dtype: "float64",
    inputs: [{ shape: [2, 3] }],
    build: ([a]) => op.reduceMax(a, [1]),
  },
  Softmax: {
    dtype: "float64",
    inputs: [{ shape: [2, 4] }],
    build: ([a]) => op.softmax(a, { axis: 1 }),
  },
  LogSoftmax: {
    dtype: "float64",
    inputs: [{ shape: [3, 4] }],
    build: ([a]) => op.logSoftmax(a, { axis: 0 }),
  },
  Where: {
    dtype: "float64",
    inputs: [{ shape: [2, 3] }, { shape: [3] }],
    build: ([a, b]) => op.where(op.greater(a, 0), a, b),
  },
  ArgMax: "not differentiable",
  Equal: "not differentiable",
  Less: "not differentiable",
  Greater: "not differentiable",
  Shape: "not differentiable",
  ConstantOfShape: "not differentiable",
  NonZero: "not differentiable",
  Scan: "not differentiable",
  LayerNormalization: {
    dtype: "float64",
    inputs: [{ shape: [2, 3, 5] }, { shape: [5] }, { shape: [5] }],
    build: ([x, s, b]) => op.mul(op.layerNormalization(op.mul(x, 2), s, b), 1.5),
  },
};

for (const [name, cases] of Object.entries(CASES)) {
  if (cases === "not differentiable") continue;
  (Array.isArray(cases) ? cases : [cases]).forEach((c, i, all) => {
    const label = all.length > 1 ? `${name} (case ${i + 1})` : name;
    Deno.test(`gradient of ${label} matches central finite differences`, async () => {
      const r = await gradCheck(c, rng(label));
      assertLess(r.maxError, c.tolerance ?? F64, JSON.stringify(r.worst));
    });
  });
}

Deno.test("MatMul's rule in float32 matches finite differences", async () => {
  for (const [a, b] of [[[2, 3, 4], [4, 2]], [[2, 3, 4], [2, 4, 5]]]) {
    const r = await gradCheck({
      dtype: "float32",
      inputs: [{ shape: a }, { shape: b }],
      build: ([x, y]: Value[]) => op.matMul(x, y),
    }, rng(`matmul-f32-${a}`));
    assertLess(r.maxError, F32, JSON.stringify(r.worst));
  }
});

Deno.test("every primitive has a gradient rule", () => {
  for (const name of Object.keys(CASES)) {
    if (typeof GRADIENTS[name as op.PrimitiveOp] !== "function") throw new Error(name);
  }
});

Deno.test("gradients of a composed function with shared subexpressions", async () => {
  // f(x, w) = softmax(x·w) ⊙ (x·w), exercising accumulation over two paths.
  const r = await gradCheck({
    dtype: "float64",
    inputs: [{ shape: [2, 3] }, { shape: [3, 4] }],
    build: ([x, w]: Value[]) => {
      const h = op.matMul(x, w);
      return op.mul(op.softmax(h), h);
    },
  }, rng("composed"));
  assertLess(r.maxError, F64);
});

Deno.test("Gather with dynamic indices and a non-zero axis", async () => {
  const r = await gradCheck({
    dtype: "float64",
    inputs: [{ shape: [2, 4, 3] }, {
      shape: [3, 2],
      dtype: "int64",
      data: [3, 0, 1, 3, 2, 2],
    }],
    build: ([t, i]) => op.gather(t, i, { axis: 1 }),
  }, rng("gather-axis1"));
  assertLess(r.maxError, F64);
});

function rng(label: string): () => number {
  let seed = 0;
  for (const ch of label) seed = (seed * 31 + ch.charCodeAt(0)) >>> 0;
  const p = new Prng(seed);
  return () => p.nextFloat();
}

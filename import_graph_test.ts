/**
 * Imports point one way (STYLE.md, "The shape of the whole"):
 *
 *   fixtures, onnx ← models ← runner ← suites ← cli.ts / mod.ts
 *
 * with `native/` (the C++ kernels and their build) used by the runner, `io/` (atomic writes) by
 * the runner and reports, and reports reading only the results schema. No suite imports another
 * suite: what two suites share lives in a non-suite module of `suites/` (e.g. `copy_arms.ts`).
 * This test reads every import line of the repository's TypeScript and checks those rules.
 * @module
 */
import { assert, assertEquals } from "@std/assert";
import { SUITES } from "./suites/registry.ts";

const ROOT = new URL("./", import.meta.url);
const SKIP = new Set(["node_modules", "std", "scratch", "out", ".cache", ".git"]);

/** Where each folder's files may import from, besides their own folder. */
const ALLOWED: Record<string, readonly string[]> = {
  io: [],
  fixtures: [],
  native: [],
  onnx: [],
  models: ["fixtures", "onnx"],
  runner: ["fixtures", "onnx", "native", "models", "io"],
  suites: ["fixtures", "onnx", "models", "runner", "io", "reports/schema.ts"],
  reports: ["io"],
  bench: ["fixtures", "onnx", "native", "models", "runner"],
};

/**
 * What tests may import besides their folder's allowance: seeded test data, the native library's
 * build and tables (differential tests run kernels against their portable definitions), and the
 * public API (a registry test checks that `mod.ts` lists what it registers).
 */
const TEST_EXTRA: readonly string[] = ["fixtures", "native", "mod.ts"];

/** Every .ts file of the repository, as a path relative to the root. */
function sources(dir = ""): string[] {
  const out: string[] = [];
  for (const entry of Deno.readDirSync(new URL(dir || "./", ROOT))) {
    if (SKIP.has(entry.name)) continue;
    const path = `${dir}${entry.name}`;
    if (entry.isDirectory) out.push(...sources(`${path}/`));
    else if (entry.name.endsWith(".ts")) out.push(path);
  }
  return out.sort();
}

/** The relative imports (and re-exports) of a file, resolved to paths relative to the root. */
export function importsOf(path: string, text: string): string[] {
  const out: string[] = [];
  const statement =
    /^[ \t]*(?:import|export)\b[^;]*?\bfrom\s*"([^"]+)"|^[ \t]*import\s*"([^"]+)"/gm;
  for (const m of text.matchAll(statement)) {
    const spec = m[1] ?? m[2];
    if (!spec.startsWith(".")) continue;
    out.push(decodeURIComponent(new URL(spec, new URL(path, ROOT)).href.slice(ROOT.href.length)));
  }
  return out;
}

/** The folder of a path (`onnx/custom/kit.ts` → `onnx`), or "" for a root file. */
function folder(path: string): string {
  const i = path.indexOf("/");
  return i < 0 ? "" : path.slice(0, i);
}

/** Whether `target` is the allowance `rule`: a folder, or one file. */
function matches(target: string, rule: string): boolean {
  return rule.endsWith(".ts") ? target === rule : folder(target) === rule;
}

const GRAPH = new Map(
  sources().map((path) => [path, importsOf(path, Deno.readTextFileSync(new URL(path, ROOT)))]),
);

Deno.test("the import scanner reads single- and multi-line imports and re-exports", () => {
  const text = 'import { a } from "./a.ts";\nimport {\n  b,\n  c,\n} from "../onnx/b.ts";\n' +
    'export { d } from "./d.ts";\nimport type { E } from "@std/assert";\n' +
    ' * import { notReal } from "./doc_example.ts";\n';
  assertEquals(importsOf("suites/x.ts", text), ["suites/a.ts", "onnx/b.ts", "suites/d.ts"]);
  assertEquals(GRAPH.get("suites/registry.ts")?.length, SUITES.length + 1);
});

Deno.test("every folder imports only the layers below it", () => {
  const violations: string[] = [];
  for (const [path, imports] of GRAPH) {
    const own = folder(path);
    if (own === "") continue; // cli.ts, mod.ts and their tests sit on top
    const allowed = ALLOWED[own];
    assert(allowed, `${path}: folder ${own} has no rule in import_graph_test.ts`);
    const test = path.endsWith("_test.ts");
    for (const target of imports) {
      if (folder(target) === own) continue;
      const rules = test ? [...allowed, ...TEST_EXTRA] : allowed;
      if (!rules.some((rule) => matches(target, rule))) violations.push(`${path} → ${target}`);
    }
  }
  assertEquals(violations, []);
});

Deno.test("no suite imports another suite", () => {
  const suiteFiles = new Set(SUITES.map((s) => `suites/${s.id.replaceAll("-", "_")}.ts`));
  const violations: string[] = [];
  for (const [path, imports] of GRAPH) {
    if (path === "suites/registry.ts") continue;
    for (const target of imports) {
      const ownTest = path === target.replace(/\.ts$/, "_test.ts");
      if (suiteFiles.has(target) && folder(path) === "suites" && !ownTest) {
        violations.push(`${path} → ${target}`);
      }
    }
  }
  assertEquals(violations, []);
});

import { assert, assertEquals, assertStringIncludes } from "@std/assert";
import { formatNumber, writeFigures, writePages, writeReport } from "./report.ts";
import { RESULTS_SCHEMA, type RunResults } from "./schema.ts";

function fakeResults(): RunResults {
  return {
    schema: RESULTS_SCHEMA,
    suite: "copy-task",
    title: "Copying long strings",
    claim: "Transformers copy strings longer than seen in training.",
    source: "paper §3, table 1",
    profile: "quick",
    seed: 0,
    threads: 2,
    config: { steps: 10 },
    checks: [{
      id: "S1",
      title: "accuracy at length 512",
      source: "table 1",
      metric: "accuracy (fraction)",
      measured: 0.912345,
      threshold: 0.9,
      direction: ">=",
      expected: "pass",
      evidence: "trained",
      actual: "pass",
      matches: true,
      detail: "Mean over seeds; a | pipe and </script> stay inert.",
      seeds: [0, 1],
      perSeed: [0.9, null],
      calibration: { seeds: [1000, 1001], measured: 0.85, perSeed: [0.85, 0.8], actual: "fail" },
    }],
    metrics: {},
    figures: [{
      id: "acc-vs-len",
      title: "Accuracy by length",
      caption: "Accuracy stays high.",
      mark: "point",
      data: [{ len: 64, acc: 0.99 }, { len: 512, acc: 0.91 }],
      x: { field: "len", title: "Length", type: "quantitative" },
      y: { field: "acc", title: "Accuracy", type: "quantitative" },
      rules: [{ axis: "y", value: 0.9, label: "threshold" }],
    }],
    verdict: "pass",
    versions: { deno: "2.9.0" },
  };
}

Deno.test("writeReport() writes figures, REPORT.md and a self-contained index.html", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const timings = [{ suite: "copy-task", wallSeconds: 12.34, phases: { train: 10 } }];
    const written = await writeReport(dir, [fakeResults()], timings);
    const expected = [
      "copy-task/figures/acc-vs-len.vl.json",
      "copy-task/figures/acc-vs-len.svg",
      "copy-task/figures/acc-vs-len.png",
      "REPORT.md",
      "index.html",
    ];
    assertEquals(written, expected.map((p) => `${dir}/${p}`));
    for (const path of written) assert(Deno.statSync(path).size > 0, path);

    const md = await Deno.readTextFile(`${dir}/REPORT.md`);
    assertStringIncludes(
      md,
      "| copy-task | S1 | accuracy at length 512 | trained | 0.9123 | ≥ 0.9 | " +
        "0.85 fail (seeds 1000–1001) | pass | pass | ✓ |",
    );
    assertStringIncludes(md, "(1 trained check: 1 as expected)");
    assertStringIncludes(md, "![Accuracy by length](copy-task/figures/acc-vs-len.svg)");
    assertStringIncludes(md, "a \\| pipe");
    assertStringIncludes(
      md,
      "Per seed (seeds 0, 1): 0.9, —. Pilot, calibration seeds 1000, 1001: 0.85, 0.8.",
    );
    assertStringIncludes(md, "Wall time 12.3 s (train 10 s).");

    const html = await Deno.readTextFile(`${dir}/index.html`);
    assert(!/src="http/i.test(html), "no external scripts");
    assertStringIncludes(html, "vegaEmbed(");
    assertStringIncludes(html, "<td>0.9123</td>");
    assertEquals(html.match(/<\/script/gi)?.length, 4, "only the four <script> elements close");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("writeReport() output is byte-identical across runs", async () => {
  const a = await Deno.makeTempDir();
  const b = await Deno.makeTempDir();
  try {
    const paths = await writeReport(a, [fakeResults()]);
    await writeReport(b, [fakeResults()]);
    for (const path of paths) {
      assertEquals(await Deno.readFile(path), await Deno.readFile(b + path.slice(a.length)), path);
    }
  } finally {
    await Deno.remove(a, { recursive: true });
    await Deno.remove(b, { recursive: true });
  }
});

Deno.test("writeFigures() and writePages() split writeReport() by suite and page", async () => {
  const a = await Deno.makeTempDir();
  const b = await Deno.makeTempDir();
  try {
    const whole = await writeReport(a, [fakeResults()]);
    const figures = await writeFigures(b, fakeResults());
    assertEquals(
      figures.map((p) => p.slice(b.length)),
      whole.slice(0, 3).map((p) => p.slice(a.length)),
    );
    // The pages alone, as the CLI rewrites them after each suite.
    const pages = await writePages(b, [fakeResults()]);
    assertEquals(pages, [`${b}/REPORT.md`, `${b}/index.html`]);
    for (const path of whole) {
      assertEquals(await Deno.readFile(path), await Deno.readFile(b + path.slice(a.length)), path);
    }
  } finally {
    await Deno.remove(a, { recursive: true });
    await Deno.remove(b, { recursive: true });
  }
});

Deno.test("formatNumber() is compact with fixed significant digits", () => {
  assertEquals(formatNumber(null), "—");
  assertEquals(formatNumber(2048), "2048");
  assertEquals(formatNumber(0.912345), "0.9123");
  assertEquals(formatNumber(123456.7), "123500");
  assertEquals(formatNumber(1.5e-7), "1.5e-7");
  assertEquals(formatNumber(-2.5e9), "-2.5e9");
  assertEquals(formatNumber(0), "0");
  assertEquals(formatNumber(0.1 + 0.2), "0.3");
  assertEquals(formatNumber(Infinity), "∞");
});

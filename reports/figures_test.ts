import {
  assert,
  assertEquals,
  assertGreater,
  assertNotEquals,
  assertStringIncludes,
} from "@std/assert";
import * as vega from "vega";
import { figureSpec, renderPng, renderSvg } from "./figures.ts";
import type { FigureData } from "./schema.ts";

const LONG_TITLE = "Exact-match accuracy on held-out strings, averaged over three training seeds";

function figure(): FigureData {
  const data = [];
  for (const model of ["transformer", "state-space model"]) {
    for (let i = 0; i < 8; i++) {
      const acc = model === "transformer" ? 1 - i / 40 : 0.9 - i / 10;
      data.push({ model, len: 32 * 2 ** i, acc, lo: acc - 0.05, hi: acc + 0.02, ok: acc >= 0.5 });
    }
  }
  return {
    id: "acc-vs-len",
    title: "Copying accuracy by length",
    caption: "Accuracy falls with length for the state-space model.",
    mark: "line",
    data,
    x: { field: "len", title: "String length (tokens)", type: "quantitative", scale: "log" },
    y: { field: "acc", title: LONG_TITLE, type: "quantitative" },
    color: { field: "model", title: "Model", type: "nominal" },
    passField: "ok",
    band: { lower: "lo", upper: "hi" },
    rules: [{ axis: "y", value: 0.5, label: "claimed ≥ 0.5" }],
  };
}

/** A bar chart whose category labels vega's width estimate would cut at the 180 px limit. */
function labelFigure(): FigureData {
  const names = ["selective copy with noise", "associative recall (long)"];
  return {
    id: "labels",
    title: "Tasks",
    caption: "",
    mark: "bar",
    data: names.map((task, i) => ({ task, acc: 0.5 + i / 4 })),
    x: { field: "acc", title: LONG_TITLE, type: "quantitative" },
    y: { field: "task", title: "Task", type: "nominal" },
  };
}

function ruleLines(svg: string): number {
  const groups = svg.match(/<g class="mark-rule role-mark[^"]*"[^>]*>.*?<\/g>/g) ?? [];
  return groups.reduce((n, g) => n + (g.match(/<line /g) ?? []).length, 0);
}

Deno.test("renderSvg() keeps long titles and labels whole (real text metrics)", async () => {
  const svg = await renderSvg(figureSpec(labelFigure()));
  assertStringIncludes(svg, LONG_TITLE);
  assertStringIncludes(svg, "selective copy with noise");
  assert(!svg.includes("…"), "no label is truncated");
});

Deno.test("renderSvg() would truncate the same labels with vega's width estimate", async () => {
  // Guards the test above: it only means something if the estimate does truncate.
  const metrics = (vega as unknown as { textMetrics: Record<string, unknown> }).textMetrics;
  const ours = metrics.width;
  metrics.width = metrics.estimateWidth;
  try {
    assertStringIncludes(await renderSvg(figureSpec(labelFigure())), "…");
  } finally {
    metrics.width = ours;
  }
});

Deno.test("renderSvg() is byte-identical across renders", async () => {
  const a = await renderSvg(figureSpec(figure()));
  await renderSvg(figureSpec(labelFigure()));
  const b = await renderSvg(figureSpec(figure()));
  assertEquals(a, b);
});

Deno.test("figureSpec() sets the font and a rule draws once for a many-row dataset", async () => {
  const fig = figure();
  const spec = figureSpec(fig);
  assertEquals((spec.config as { font: string }).font, "DejaVu Sans");
  assertEquals(ruleLines(await renderSvg(spec)), 1);
  fig.column = { field: "model", title: "Model", type: "nominal" };
  assertEquals(ruleLines(await renderSvg(figureSpec(fig))), 2, "one rule per facet cell");
});

Deno.test("renderPng() returns a PNG with the text drawn", async () => {
  const svg = await renderSvg(figureSpec(figure()));
  const png = renderPng(svg);
  assertEquals([...png.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  assertGreater(png.length, 10_000);
  // Same layout with the chart title's text removed: differs only if resvg drew the text.
  const untitled = svg.replace(">Copying accuracy by length<", "><");
  assertNotEquals(untitled, svg);
  assertNotEquals(renderPng(untitled), png);
});

Deno.test("figureSpec() shades a span of x under the data, with its label", async () => {
  const fig = { ...figure(), spans: [{ from: 32, to: 256, label: "training" }] };
  const layers = (figureSpec(fig) as unknown as { layer: Record<string, unknown>[] }).layer;
  // Bottom layer: the rect from 32 to 256; then its label; the band and series draw over them.
  assertEquals((layers[0].mark as { type: string }).type, "rect");
  assertEquals((layers[0].data as { values: unknown[] }).values, [
    { from: 32, to: 256, label: "training" },
  ]);
  assertEquals((layers[1].mark as { type: string }).type, "text");
  const svg = await renderSvg(figureSpec(fig));
  assertStringIncludes(svg, "training");
  const plain = await renderSvg(figureSpec(figure()));
  assertEquals(
    (svg.match(/mark-rect/g) ?? []).length,
    (plain.match(/mark-rect/g) ?? []).length + 1,
  );
});

Deno.test("figureSpec() labels a vertical rule on its left only where it is the plot's right edge", () => {
  const align = (value: number) => {
    const fig = { ...figure(), rules: [{ axis: "x" as const, value, label: "paper" }] };
    const layers = (figureSpec(fig) as { layer: { mark: { type: string; align?: string } }[] })
      .layer;
    return layers.find((l) => l.mark.type === "text" && "align" in l.mark)?.mark.align;
  };
  assertEquals(align(100), "left", "inside the data: the label to the right");
  assertEquals(align(4096), "right", "at the largest x");
  assertEquals(align(10_000), "right", "past the data");
});

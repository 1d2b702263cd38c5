/**
 * Figures: {@link FigureData} → Vega-Lite spec → SVG → PNG, with no browser and no canvas.
 *
 * Text is measured with the DejaVu Sans glyph advances (opentype.js) and the PNG is drawn with
 * the same font files, so label layout in the SVG matches what resvg draws.
 * @module
 */
// Imported only so that Deno installs the font package into node_modules; the TTFs are data.
import "dejavu-fonts-ttf/package.json" with { type: "json" };
import { Resvg } from "@resvg/resvg-js";
import opentype from "opentype.js";
import * as vega from "vega";
import * as vl from "vega-lite";
import { npmPackageFile } from "./npm_files.ts";
import type { FigureData, FigureField } from "./schema.ts";

/** The one font family used in every figure. */
export const FONT_FAMILY = "DejaVu Sans";

const FONT_FILES = {
  regular: npmPackageFile("dejavu-fonts-ttf", "ttf/DejaVuSans.ttf"),
  bold: npmPackageFile("dejavu-fonts-ttf", "ttf/DejaVuSans-Bold.ttf"),
};

const PASS_COLOUR = "#2ca02c";
const FAIL_COLOUR = "#d62728";
// Field added by a calculate transform; a readable name because it titles the legend entries.
const OUTCOME_FIELD = "outcome";

// opentype.js ships no types; this is the part of its Font that is used here.
interface GlyphFont {
  /** Sum of glyph advances (with kerning) × fontSize / unitsPerEm. */
  getAdvanceWidth(text: string, fontSize: number): number;
}

// The part of a vega text scenegraph item that text measurement reads.
interface TextItem {
  fontSize?: number | string;
  fontWeight?: number | string;
}

let fonts: { regular: GlyphFont; bold: GlyphFont } | undefined;

function loadFont(path: string): GlyphFont {
  const bytes = Deno.readFileSync(path);
  const buffer = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
  return opentype.parse(buffer) as GlyphFont;
}

function isBold(weight: number | string | undefined): boolean {
  return weight === "bold" || weight === "bolder" || Number(weight) >= 600;
}

/** Width in px of `text` as resvg will draw it (vega calls this for layout and truncation). */
function measureText(item: TextItem, text: unknown): number {
  fonts ??= { regular: loadFont(FONT_FILES.regular), bold: loadFont(FONT_FILES.bold) };
  // Same defaults as vega-scenegraph's own estimate: 11 px, text trimmed.
  const size = item.fontSize == null ? 11 : Number(item.fontSize) || 0;
  const line = text == null ? "" : String(text).trim();
  const font = isBold(item.fontWeight) ? fonts.bold : fonts.regular;
  return size <= 0 || line === "" ? 0 : font.getAdvanceWidth(line, size);
}

// Without a canvas vega estimates 0.8 × fontSize per character (~1.5× too wide for DejaVu Sans)
// and truncates labels with "…". `textMetrics` is exported by vega but missing from its typings.
(vega as unknown as { textMetrics: { width: typeof measureText } }).textMetrics.width = measureText;

type Layer = Record<string, unknown>;
type Encoding = Record<string, unknown>;
type Rule = NonNullable<FigureData["rules"]>[number];
type Span = NonNullable<FigureData["spans"]>[number];

function encodeField(f: FigureField): Encoding {
  const def: Encoding = { field: f.field, type: f.type, title: f.title };
  // A "nice" log domain rounds out to whole decades, mostly empty for e.g. 64…1024.
  if (f.scale === "log") def.scale = { type: "log", nice: false };
  return def;
}

function plotSize(fig: FigureData): { width: number; height: number } {
  return fig.column ? { width: 220, height: 200 } : { width: 420, height: 260 };
}

function encodeX(fig: FigureData): Encoding {
  const x = encodeField(fig.x);
  if (fig.x.type === "quantitative") return x;
  // Vega-Lite turns discrete labels 90°; keep them level when they fit side by side.
  const labels = new Set(fig.data.map((row) => String(row[fig.x.field])));
  let total = 0;
  for (const label of labels) total += measureText({ fontSize: 10 }, label) + 8;
  if (total <= plotSize(fig).width) x.axis = { labelAngle: 0 };
  return x;
}

/** Offset of grouped bars (and their pass/fail points) by series. */
function seriesOffset(color: FigureField): Encoding {
  // An explicit sort: otherwise Vega-Lite sorts the offset by the pass/fail fill domain.
  return { field: color.field, type: "nominal", sort: "ascending" };
}

function bandLayer(fig: FigureData, band: { lower: string; upper: string }): Layer {
  const color = fig.color ? { color: encodeField(fig.color) } : {};
  return {
    mark: { type: "area", opacity: 0.2 },
    encoding: {
      x: encodeX(fig),
      y: { ...encodeField(fig.y), field: band.lower },
      y2: { field: band.upper },
      ...color,
    },
  };
}

function mainLayers(fig: FigureData): Layer[] {
  const x = encodeX(fig);
  const y = encodeField(fig.y);
  const color = fig.color ? { color: encodeField(fig.color) } : {};
  if (fig.mark === "rect") {
    // Heat-map: the colour field is the value; a sequential scheme reads as "more".
    const value = fig.color ? { color: { ...color.color, scale: { scheme: "viridis" } } } : {};
    return [{ mark: "rect", encoding: { x, y, ...value } }];
  }
  if (fig.mark === "bar") {
    if (!fig.color || fig.x.type === "quantitative") {
      return [{ mark: "bar", encoding: { x, y, ...color } }];
    }
    // Series side by side within each x category, not stacked.
    const xOffset = seriesOffset(fig.color);
    return [{ mark: "bar", encoding: { x, y: { ...y, stack: null }, ...color, xOffset } }];
  }
  const layers: Layer[] = [];
  if (fig.mark === "line") layers.push({ mark: "line", encoding: { x, y, ...color } });
  // With a passField the points come from passLayer instead.
  if (!fig.passField) {
    layers.push({ mark: { type: "point", filled: true, size: 40 }, encoding: { x, y, ...color } });
  }
  return layers;
}

function passLayer(fig: FigureData, passField: string): Layer {
  const outcome = (range: string[]): Encoding => ({
    field: OUTCOME_FIELD,
    type: "nominal",
    title: "pass/fail",
    scale: { domain: ["pass", "fail"], range },
  });
  const encoding: Encoding = {
    x: encodeX(fig),
    y: encodeField(fig.y),
    fill: outcome([PASS_COLOUR, FAIL_COLOUR]),
    shape: outcome(["circle", "cross"]),
  };
  // The series stays visible as the outline; its legend merges with the colour legend.
  if (fig.color && fig.mark !== "rect") {
    const legend = fig.mark === "point" ? { legend: { symbolFillColor: "white" } } : {};
    encoding.stroke = { ...encodeField(fig.color), ...legend };
  }
  if (fig.color && fig.mark === "bar" && fig.x.type !== "quantitative") {
    encoding.xOffset = seriesOffset(fig.color);
  }
  return {
    transform: [{
      calculate: `datum[${JSON.stringify(passField)}] === true ? "pass" : "fail"`,
      as: OUTCOME_FIELD,
    }],
    // A thin series outline so that the pass/fail fill stays the dominant colour.
    mark: { type: "point", filled: true, size: 70, opacity: 1, strokeWidth: 1 },
    encoding,
  };
}

function ruleLayers(fig: FigureData, rule: Rule): Layer[] {
  // Its own one-row data: inheriting the figure's data would draw the rule once per row.
  const data = { values: [{ value: rule.value, label: rule.label }] };
  const axis = rule.axis === "y" ? encodeField(fig.y) : encodeX(fig);
  const position = { [rule.axis]: { ...axis, field: "value" } };
  // The label sits above the right end of a horizontal rule, right of the top of a vertical one;
  // left of it where the rule is the plot's right edge (at or past every x of the data), since
  // right of it the label would run into the legend.
  const xs = fig.data.map((row) => row[fig.x.field]).filter((v) => typeof v === "number");
  const atRightEdge = xs.length > 0 && rule.value >= Math.max(...(xs as number[]));
  const label = rule.axis === "y"
    ? {
      mark: { align: "right", baseline: "bottom", dx: -3, dy: -2 },
      at: { x: { value: "width" } },
    }
    : {
      mark: {
        align: atRightEdge ? "right" : "left",
        baseline: "top",
        dx: atRightEdge ? -3 : 3,
        dy: 3,
      },
      at: { y: { value: 0 } },
    };
  return [
    { data, mark: { type: "rule", strokeDash: [6, 4], color: "#555" }, encoding: position },
    {
      data,
      mark: { type: "text", color: "#333", fontSize: 10, ...label.mark },
      encoding: { ...position, ...label.at, text: { field: "label" } },
    },
  ];
}

function spanLayers(fig: FigureData, span: Span): Layer[] {
  // Its own one-row data, as a rule's; the label sits inside the span's top-left corner.
  const data = { values: [{ from: span.from, to: span.to, label: span.label }] };
  const x = { ...encodeX(fig), field: "from" };
  return [
    {
      data,
      mark: { type: "rect", color: "#888", opacity: 0.12 },
      encoding: { x, x2: { field: "to" } },
    },
    {
      data,
      mark: {
        type: "text",
        color: "#333",
        fontSize: 10,
        align: "left",
        baseline: "top",
        dx: 3,
        dy: 3,
      },
      encoding: { x, y: { value: 0 }, text: { field: "label" } },
    },
  ];
}

/**
 * The Vega-Lite spec for a figure, data inlined, fonts set to DejaVu Sans.
 *
 * Layers, bottom to top: the shaded x ranges of `spans` with their labels, the band (area,
 * opacity 0.2), the mark (a "line" also gets points), the
 * pass/fail points, then one rule + text label per entry of `rules`. With `column` the layers
 * are faceted into small multiples.
 *
 * @example
 * ```ts ignore
 * const svg = await renderSvg(figureSpec(fig));
 * ```
 */
export function figureSpec(fig: FigureData): vl.TopLevelSpec {
  const layers = [
    ...(fig.spans ?? []).flatMap((span) => spanLayers(fig, span)),
    ...(fig.band ? [bandLayer(fig, fig.band)] : []),
    ...mainLayers(fig),
    ...(fig.passField ? [passLayer(fig, fig.passField)] : []),
    ...(fig.rules ?? []).flatMap((rule) => ruleLayers(fig, rule)),
  ];
  const size = plotSize(fig);
  const config = {
    font: FONT_FAMILY,
    background: "white",
    // The band layer also feeds the series legend; without this its symbols are 0.2 opaque.
    // Series names are often long; the default limits (160/180 px) cut them with "…".
    legend: { orient: "right", symbolOpacity: 1, labelLimit: 320, titleLimit: 320 },
    title: { anchor: "start", fontSize: 14 },
  };
  const top = {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    title: fig.title,
    data: { values: fig.data },
    config,
  };
  // Layers are built as plain objects (Vega-Lite's layer types are too deep to spell out here);
  // vl.compile checks the result.
  const spec = fig.column
    ? { ...top, facet: { column: encodeField(fig.column) }, spec: { ...size, layer: layers } }
    : { ...top, ...size, layer: layers };
  return spec as unknown as vl.TopLevelSpec;
}

/**
 * Renders a Vega-Lite spec to an SVG string (headless vega View, renderer "none").
 * Byte-identical for the same spec: clip/gradient ids are reset before each render.
 */
export async function renderSvg(spec: vl.TopLevelSpec): Promise<string> {
  const compiled = vl.compile(spec).spec;
  const view = new vega.View(vega.parse(compiled), { renderer: "none" });
  try {
    // SVG ids count up per process; resetting keeps the output independent of earlier renders.
    vega.resetSVGDefIds();
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

/**
 * Rasterises an SVG at 2× with resvg, using only the bundled DejaVu font files (with no usable
 * font resvg silently drops all text, and system fonts differ between machines).
 */
export function renderPng(svg: string): Uint8Array {
  const resvg = new Resvg(svg, {
    font: {
      fontFiles: [FONT_FILES.regular, FONT_FILES.bold],
      loadSystemFonts: false,
      defaultFontFamily: FONT_FAMILY,
      sansSerifFamily: FONT_FAMILY,
    },
    fitTo: { mode: "zoom", value: 2 },
  });
  return resvg.render().asPng();
}

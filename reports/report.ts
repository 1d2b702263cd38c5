/**
 * Writes the human-facing output of a run: figure files per suite, REPORT.md and a self-contained
 * index.html. Reads {@link RunResults} only; `<suite>/results.json` is written by the caller.
 * @module
 */
import { join } from "node:path";
import { writeFileAtomic } from "../io/atomic.ts";
import { figureSpec, renderPng, renderSvg } from "./figures.ts";
import { npmPackageFile } from "./npm_files.ts";
import {
  type CheckResult,
  EVIDENCE,
  type RunResults,
  type RunTimings,
  summarise,
} from "./schema.ts";

const DIRECTION_SYMBOL: Record<CheckResult["direction"], string> = {
  ">=": "≥",
  "<=": "≤",
  ">": ">",
  "<": "<",
  "==": "=",
};

// Browsers may lack DejaVu Sans; a fallback list keeps the HTML figures in a sans-serif face.
const HTML_FONT = "DejaVu Sans, Verdana, Arial, sans-serif";

/**
 * Formats a number for a table: integers below 10⁶ as they are, other values with `digits`
 * significant digits (exponent notation outside 10⁻³…10⁶), trailing zeros dropped; null → "—".
 *
 * @example
 * ```ts
 * formatNumber(0.912345); // "0.9123"
 * formatNumber(2048); // "2048"
 * formatNumber(1.5e-7); // "1.5e-7"
 * formatNumber(null); // "—"
 * ```
 */
export function formatNumber(x: number | null | undefined, digits = 4): string {
  if (x === null || x === undefined) return "—";
  if (!Number.isFinite(x)) return Number.isNaN(x) ? "NaN" : x > 0 ? "∞" : "−∞";
  const abs = Math.abs(x);
  if (Number.isInteger(x) && abs < 1e6) return String(x);
  if (abs >= 1e-3 && abs < 1e6) return String(Number(x.toPrecision(digits)));
  // toExponential pads with zeros ("1.500e-7"); Number() drops them from the mantissa.
  const [mantissa, exponent] = x.toExponential(digits - 1).split("e");
  return `${Number(mantissa)}e${Number(exponent)}`;
}

function formatThreshold(check: CheckResult): string {
  if (check.threshold === null) return "—";
  return `${DIRECTION_SYMBOL[check.direction]} ${formatNumber(check.threshold)}`;
}

function matchMark(check: CheckResult): string {
  return check.matches ? "✓" : "✗";
}

/** The check's detail sentence, followed by its per-seed values (and its pilot's) if any. */
function detailText(check: CheckResult): string {
  let text = check.detail;
  if (check.perSeed) {
    const values = check.perSeed.map((v) => formatNumber(v)).join(", ");
    const seeds = check.seeds ? ` (seeds ${check.seeds.join(", ")})` : "";
    text += ` Per seed${seeds}: ${values}.`;
  }
  const pilot = check.calibration;
  if (pilot?.perSeed) {
    const values = pilot.perSeed.map((v) => formatNumber(v)).join(", ");
    text += ` Pilot, calibration seeds ${pilot.seeds.join(", ")}: ${values}.`;
  }
  return text;
}

/** The expected verdict, and the source's claim where the pilot departed from it. */
export function expectedText(check: CheckResult): string {
  return check.claimed ? `${check.expected} (claim: ${check.claimed})` : check.expected;
}

/** The pilot's figure and verdict on its calibration seeds, e.g. "0.605 inconclusive (1000–1002)". */
function calibrationText(check: CheckResult): string {
  const k = check.calibration;
  if (!k) return "—";
  const seeds = k.seeds.length > 1 ? `${k.seeds[0]}–${k.seeds.at(-1)}` : `${k.seeds[0]}`;
  return `${formatNumber(k.measured)} ${k.actual} (seeds ${seeds})`;
}

const VERDICT_HEADER = [
  "Suite",
  "Check",
  "Title",
  "Evidence",
  "Measured",
  "Threshold",
  "Pilot",
  "Expected",
  "Actual",
  "Match",
];

function verdictRows(results: RunResults[]): string[][] {
  return results.flatMap((r) =>
    r.checks.map((c) => [
      r.suite,
      c.id,
      c.title,
      c.evidence,
      formatNumber(c.measured),
      formatThreshold(c),
      calibrationText(c),
      expectedText(c),
      c.actual,
      matchMark(c),
    ])
  );
}

const CHECK_HEADER = [
  "Check",
  "Evidence",
  "Metric",
  "Measured",
  "Threshold",
  "Pilot",
  "Expected",
  "Actual",
  "Match",
  "Source",
  "Detail",
];

function checkRows(r: RunResults): string[][] {
  return r.checks.map((c) => [
    `${c.id}: ${c.title}`,
    c.evidence,
    c.metric,
    formatNumber(c.measured),
    formatThreshold(c),
    calibrationText(c),
    expectedText(c),
    c.actual,
    matchMark(c),
    c.source,
    detailText(c),
  ]);
}

function count(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? "" : "s"}`;
}

function overallLine(results: RunResults[]): string {
  const s = summarise(results.flatMap((r) => r.checks));
  const verdict = s.allMatch
    ? "every check matches its expected verdict"
    : `${s.total - s.matched} do not match their expected verdict`;
  const classes = EVIDENCE.filter((e) => s.byEvidence[e].total > 0).map((e) =>
    `${count(s.byEvidence[e].total, `${e} check`)}: ${s.byEvidence[e].matched} as expected`
  );
  const missed = s.notReproduced.length
    ? ` The claim is not reproduced by ${count(s.notReproduced.length, "check")}: ` +
      `${s.notReproduced.join(", ")}.`
    : "";
  return `${count(results.length, "suite")}, ${count(s.total, "check")}: ${verdict}` +
    (classes.length ? ` (${classes.join("; ")}).` : ".") + missed;
}

function suiteLine(r: RunResults): string {
  const s = summarise(r.checks);
  const verdict = s.total
    ? `Verdict: ${r.verdict} (${s.matched}/${s.total} checks match their expectation).`
    : "No checks at this profile: figures and metrics only (see the figure's caption).";
  return `${verdict} Profile ${r.profile}, seed ${r.seed}, ${r.threads} threads.`;
}

function versionsLine(r: RunResults): string {
  return Object.entries(r.versions).map(([name, version]) => `${name} ${version}`).join(", ");
}

function timingsLine(t: RunTimings): string {
  const phases = Object.entries(t.phases).map(([name, s]) => `${name} ${formatNumber(s, 3)} s`);
  return `Wall time ${formatNumber(t.wallSeconds, 3)} s` +
    (phases.length ? ` (${phases.join(", ")}).` : ".");
}

function figurePath(suite: string, id: string, ext: string): string {
  return `${suite}/figures/${id}.${ext}`;
}

// ---------------------------------------------------------------------------------------------
// REPORT.md

function mdCell(text: string): string {
  return text.replace(/\|/g, "\\|").replace(/\s*\n\s*/g, " ");
}

function mdRow(cells: string[]): string {
  return `| ${cells.map(mdCell).join(" | ")} |`;
}

function mdTable(header: string[], rows: string[][]): string[] {
  return [mdRow(header), `|${header.map(() => "---").join("|")}|`, ...rows.map(mdRow)];
}

function markdownReport(results: RunResults[], timings: RunTimings[]): string {
  const lines = ["# claimbench report", "", overallLine(results), "", "## Verdicts", ""];
  lines.push(...mdTable(VERDICT_HEADER, verdictRows(results)));
  for (const r of results) {
    lines.push("", `## ${r.title} (\`${r.suite}\`)`, "", suiteLine(r), "");
    lines.push(`**Claim.** ${r.claim}`, "", `**Source.** ${r.source}`, "");
    lines.push(...mdTable(CHECK_HEADER, checkRows(r)));
    for (const f of r.figures) {
      lines.push("", `![${f.title}](${figurePath(r.suite, f.id, "svg")})`, "", `*${f.caption}*`);
    }
    const t = timings.find((t) => t.suite === r.suite);
    if (t) lines.push("", timingsLine(t));
    if (Object.keys(r.versions).length) lines.push("", `Versions: ${versionsLine(r)}.`);
  }
  return lines.join("\n") + "\n";
}

// ---------------------------------------------------------------------------------------------
// index.html

function esc(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;");
}

function htmlTable(header: string[], rows: string[][]): string {
  const head = `<tr>${header.map((h) => `<th>${esc(h)}</th>`).join("")}</tr>`;
  const body = rows.map((row) => `<tr>${row.map((c) => `<td>${esc(c)}</td>`).join("")}</tr>`);
  return `<table>\n${head}\n${body.join("\n")}\n</table>`;
}

/** JSON that is safe inside a <script> element: no "<", so no "</script" or "<!--". */
function scriptJson(value: unknown): string {
  return JSON.stringify(value).replace(/</g, "\\u003c");
}

/** A UMD build inlined into a <script> element; "</script" would end the element early. */
function inlineScript(pkg: string, file: string): string {
  const code = Deno.readTextFileSync(npmPackageFile(pkg, file));
  return `<script>\n${code.replace(/<\/script/gi, "<\\/script")}\n</script>`;
}

const CSS = `body { font-family: "DejaVu Sans", Verdana, Arial, sans-serif; margin: 2em auto;
  max-width: 1100px; padding: 0 1em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.6em; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
figure { margin: 1.5em 0; }
figcaption { font-style: italic; max-width: 800px; }`;

function htmlReport(results: RunResults[], timings: RunTimings[]): string {
  const parts = ["<h1>claimbench report</h1>", `<p>${esc(overallLine(results))}</p>`];
  parts.push("<h2>Verdicts</h2>");
  parts.push(htmlTable(VERDICT_HEADER, verdictRows(results)));
  const specs: { el: string; spec: unknown }[] = [];
  for (const r of results) {
    parts.push(`<h2>${esc(r.title)} (<code>${esc(r.suite)}</code>)</h2>`);
    parts.push(`<p>${esc(suiteLine(r))}</p>`);
    parts.push(`<p><strong>Claim.</strong> ${esc(r.claim)}</p>`);
    parts.push(`<p><strong>Source.</strong> ${esc(r.source)}</p>`);
    parts.push(htmlTable(CHECK_HEADER, checkRows(r)));
    for (const f of r.figures) {
      const el = `fig-${r.suite}-${f.id}`;
      const spec = figureSpec(f);
      specs.push({ el, spec: { ...spec, config: { ...spec.config, font: HTML_FONT } } });
      parts.push(
        `<figure>\n<div id="${el}"></div>\n<figcaption>${esc(f.caption)}</figcaption>\n</figure>`,
      );
    }
    const t = timings.find((t) => t.suite === r.suite);
    if (t) parts.push(`<p>${esc(timingsLine(t))}</p>`);
    if (Object.keys(r.versions).length) parts.push(`<p>Versions: ${esc(versionsLine(r))}.</p>`);
  }
  return [
    "<!DOCTYPE html>",
    '<html lang="en">',
    "<head>",
    '<meta charset="utf-8">',
    "<title>claimbench report</title>",
    `<style>\n${CSS}\n</style>`,
    inlineScript("vega", "build/vega.min.js"),
    inlineScript("vega-lite", "build/vega-lite.min.js"),
    inlineScript("vega-embed", "build/vega-embed.min.js"),
    "</head>",
    "<body>",
    ...parts,
    "<script>",
    `const figures = ${scriptJson(specs)};`,
    "for (const f of figures) {",
    "  // No editor/source links: the report must work offline.",
    "  const actions = { export: true, source: false, compiled: false, editor: false };",
    '  vegaEmbed(document.getElementById(f.el), f.spec, { renderer: "svg", actions });',
    "}",
    "</script>",
    "</body>",
    "</html>",
    "",
  ].join("\n");
}

// ---------------------------------------------------------------------------------------------

/**
 * Writes, under `dir`, one suite's figures (`<suite>/figures/<id>.vl.json`, `.svg`, `.png`),
 * each atomically. Output is byte-identical for the same input. Returns the paths written, in
 * order. The CLI calls this once per suite, as the suite finishes.
 *
 * @example
 * ```ts ignore
 * const written = await writeFigures("out", results);
 * ```
 */
export async function writeFigures(dir: string, r: RunResults): Promise<string[]> {
  const written: string[] = [];
  await Deno.mkdir(join(dir, r.suite, "figures"), { recursive: true });
  for (const f of r.figures) {
    const spec = figureSpec(f);
    const svg = await renderSvg(spec);
    written.push(await writeUnder(dir, figurePath(r.suite, f.id, "vl.json"), json(spec)));
    written.push(await writeUnder(dir, figurePath(r.suite, f.id, "svg"), svg));
    written.push(await writeUnder(dir, figurePath(r.suite, f.id, "png"), renderPng(svg)));
  }
  return written;
}

/**
 * Writes, under `dir`, `REPORT.md` and a self-contained `index.html` (vega, vega-lite and
 * vega-embed inlined, so it renders offline) of `results`, each atomically; the figures they
 * show are {@linkcode writeFigures}'s. Cheap next to rendering figures, so the CLI rewrites
 * both after every suite. Output is byte-identical for the same input. Returns the two paths.
 *
 * @example
 * ```ts ignore
 * const [md, html] = await writePages("out", [results], [timings]);
 * ```
 */
export async function writePages(
  dir: string,
  results: RunResults[],
  timings: RunTimings[] = [],
): Promise<string[]> {
  await Deno.mkdir(dir, { recursive: true });
  return [
    await writeUnder(dir, "REPORT.md", markdownReport(results, timings)),
    await writeUnder(dir, "index.html", htmlReport(results, timings)),
  ];
}

/**
 * Writes, under `dir`, each suite's figures ({@linkcode writeFigures}), then `REPORT.md` and
 * `index.html` ({@linkcode writePages}). Returns the paths written, in order.
 *
 * @example
 * ```ts ignore
 * const written = await writeReport("out", [results], [timings]);
 * ```
 */
export async function writeReport(
  dir: string,
  results: RunResults[],
  timings: RunTimings[] = [],
): Promise<string[]> {
  const written: string[] = [];
  for (const r of results) written.push(...await writeFigures(dir, r));
  written.push(...await writePages(dir, results, timings));
  return written;
}

function json(value: unknown): string {
  return JSON.stringify(value, null, 2) + "\n";
}

/** Writes `data` to `dir/relPath` atomically; returns the path. */
async function writeUnder(
  dir: string,
  relPath: string,
  data: string | Uint8Array,
): Promise<string> {
  const path = join(dir, relPath);
  await writeFileAtomic(path, data);
  return path;
}

/**
 * Hand-written SVG chart of a benchmark run: delivered rate vs offered rate,
 * one panel per topology/workload, one line per relay, and the ideal
 * (everything delivered) as a dashed line.
 *
 * @module
 */
import type { BenchRun } from "./types.ts";
import { summarize } from "./summary.ts";

const COLORS = ["#1f77b4", "#2ca02c", "#9467bd", "#d62728", "#ff7f0e", "#8c564b", "#17becf"];
const W = 760, H = 380, ML = 70, MR = 190, MT = 40, MB = 50;

function esc(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

/** A "nice" axis step for a range. */
function niceStep(max: number, ticks = 6): number {
  const raw = max / ticks;
  const p = 10 ** Math.floor(Math.log10(raw || 1));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= raw) return m * p;
  return 10 * p;
}

/** Render the chart. */
export function renderSvg(b: BenchRun): string {
  const all = b.passes.flatMap((p) => p.runs);
  const groups: { key: string; topology: string; workload: string }[] = [];
  for (const r of all) {
    const key = `${r.topology} · ${r.workload}`;
    if (!groups.some((g) => g.key === key)) {
      groups.push({ key, topology: r.topology, workload: r.workload });
    }
  }
  const relayNames = [...new Set(all.map((r) => r.relay))];
  const color = (name: string) => COLORS[relayNames.indexOf(name) % COLORS.length];
  const out: string[] = [];
  const total = H * Math.max(1, groups.length);
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${total}" viewBox="0 0 ${W} ${total}" font-family="sans-serif" font-size="12">`,
  );
  out.push(`<rect width="${W}" height="${total}" fill="#fff"/>`);
  groups.forEach((g, gi) => {
    const y0 = gi * H;
    const runs = all.filter((r) =>
      r.topology === g.topology && r.workload === g.workload && !r.skipped
    );
    // One point per requested rate (median over the passes) plus every bisection trial.
    const series = [...new Set(runs.map((r) => r.relay))].map((name) => {
      const mine = runs.filter((r) => r.relay === name);
      const rates = [...new Set(mine.flatMap((r) => r.trials.map((t) => t.spec.rate)))];
      const fixed = rates.map((rate) => {
        const ts = mine.flatMap((r) => r.trials.filter((t) => t.spec.rate === rate && t.sent > 0));
        return {
          x: (summarize(ts.map((t) => t.offered_pps))?.median ?? 0) / 1000,
          y: (summarize(ts.map((t) => t.delivered_pps))?.median ?? 0) / 1000,
        };
      }).filter((p) => p.x > 0);
      const bis = mine.flatMap((r) => r.bisection).filter((t) => t.sent > 0)
        .map((t) => ({ x: t.offered_pps / 1000, y: t.delivered_pps / 1000 }));
      const first = mine.find((r) => r.trials[0])?.trials[0];
      return {
        name,
        pts: [...fixed, ...bis].sort((a, c) => a.x - c.x),
        fanout: first ? first.expected / Math.max(1, first.sent) : 1,
      };
    });
    const fan = Math.max(1, ...series.map((s) => s.fanout));
    const xmax = Math.max(1, ...series.flatMap((s) => s.pts.map((p) => p.x))) * 1.05;
    const ymax = Math.max(
      1,
      ...series.flatMap((s) => s.pts.map((p) => p.y)),
      xmax * fan > 0 ? 0 : 0,
    ) * 1.1;
    const pw = W - ML - MR, ph = H - MT - MB;
    const sx = (x: number) => +(ML + (x / xmax) * pw).toFixed(1);
    const sy = (y: number) => +(y0 + MT + ph - (Math.min(y, ymax) / ymax) * ph).toFixed(1);
    out.push(
      `<text x="${ML}" y="${y0 + 22}" font-size="14" font-weight="bold">${
        esc(
          `${g.key}: delivered vs offered rate (kpps), ${b.mode} run ${b.started}${
            b.passes.length > 1 ? `, median of ${b.passes.length} passes` : ""
          }`,
        )
      }</text>`,
    );
    // grid and ticks
    const xs = niceStep(xmax), ys = niceStep(ymax);
    for (let x = 0; x <= xmax; x += xs) {
      out.push(`<line x1="${sx(x)}" y1="${sy(0)}" x2="${sx(x)}" y2="${sy(ymax)}" stroke="#eee"/>`);
      out.push(`<text x="${sx(x)}" y="${sy(0) + 16}" text-anchor="middle">${+x.toFixed(1)}</text>`);
    }
    for (let y = 0; y <= ymax; y += ys) {
      out.push(`<line x1="${sx(0)}" y1="${sy(y)}" x2="${sx(xmax)}" y2="${sy(y)}" stroke="#eee"/>`);
      out.push(`<text x="${sx(0) - 6}" y="${sy(y) + 4}" text-anchor="end">${+y.toFixed(1)}</text>`);
    }
    out.push(
      `<line x1="${sx(0)}" y1="${sy(0)}" x2="${sx(xmax)}" y2="${sy(0)}" stroke="#333"/>`,
      `<line x1="${sx(0)}" y1="${sy(0)}" x2="${sx(0)}" y2="${sy(ymax)}" stroke="#333"/>`,
      `<text x="${ML + pw / 2}" y="${
        y0 + H - 12
      }" text-anchor="middle">offered (generator) kpps</text>`,
      `<text transform="translate(18 ${
        y0 + MT + ph / 2
      }) rotate(-90)" text-anchor="middle">delivered kpps (at the receiver)</text>`,
    );
    // ideal line y = fan * x, clipped to ymax
    const ix = Math.min(xmax, ymax / fan);
    out.push(
      `<line x1="${sx(0)}" y1="${sy(0)}" x2="${sx(ix)}" y2="${
        sy(ix * fan)
      }" stroke="#999" stroke-dasharray="5 4"/>`,
    );
    series.forEach((s) => {
      if (!s.pts.length) return;
      const c = color(s.name);
      out.push(
        `<polyline fill="none" stroke="${c}" stroke-width="2" points="${
          s.pts.map((p) => `${sx(p.x).toFixed(1)},${sy(p.y).toFixed(1)}`).join(" ")
        }"/>`,
      );
      for (const p of s.pts) {
        out.push(
          `<circle cx="${sx(p.x).toFixed(1)}" cy="${sy(p.y).toFixed(1)}" r="3" fill="${c}"/>`,
        );
      }
    });
    // legend
    const lx = W - MR + 15;
    let ly = y0 + MT + 10;
    for (const s of series) {
      out.push(
        `<line x1="${lx}" y1="${ly}" x2="${lx + 20}" y2="${ly}" stroke="${
          color(s.name)
        }" stroke-width="3"/>`,
        `<text x="${lx + 26}" y="${ly + 4}">${esc(s.name)}</text>`,
      );
      ly += 18;
    }
    out.push(
      `<line x1="${lx}" y1="${ly}" x2="${
        lx + 20
      }" y2="${ly}" stroke="#999" stroke-dasharray="5 4"/>`,
      `<text x="${lx + 26}" y="${ly + 4}">all delivered${fan > 1 ? ` (×${fan})` : ""}</text>`,
    );
  });
  out.push("</svg>");
  return out.join("\n") + "\n";
}

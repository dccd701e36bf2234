"""The explorer page's HTML, CSS and JavaScript, inlined by :func:`render` (no file is read at run time, so the
package needs no data files; the page fetches nothing: its Content-Security-Policy is ``default-src 'none'``).

The script draws the cells of the view shown with ``Path2D`` batches of at most 256 cells of one colour of a
4096-colour palette (a few thousand fills, not one per cell): while more than 20,000 cells are in sight, paths of all cells in the
domain's unit coordinates, built once and filled under the view's transform; otherwise (and always past a
zoom of 256, where float32 path coordinates would lose the cells) paths of the visible cells only, transformed
in float64 at each draw. ``cellAt`` finds a cell by point-in-convex-polygon tests among the cells listed in a
uniform bucket grid (about two cells a bucket).
"""
from __future__ import annotations

import html
import json

CSS = r"""
:root { color-scheme: light; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.4 system-ui, -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif;
       color: #1d232a; background: #f5f6f8; }
header { padding: 10px 16px 4px; }
h1 { font-size: 18px; margin: 0 0 2px; }
#summary { margin: 0; color: #444; }
#controls { display: flex; flex-wrap: wrap; gap: 8px 18px; align-items: center; padding: 6px 16px; }
#controls label { display: inline-flex; align-items: center; gap: 6px; }
button { font: inherit; padding: 3px 10px; border: 1px solid #99a; border-radius: 4px; background: #fff; cursor: pointer; }
button:disabled { cursor: default; color: #999; }
main { display: flex; gap: 16px; padding: 6px 16px 16px; align-items: flex-start; }
#stage { position: relative; flex: none; background: #e4e6ea; border: 1px solid #aab; }
#stage canvas { position: absolute; left: 0; top: 0; display: block; }
#overlay { cursor: crosshair; touch-action: none; }
#overlay.dragging { cursor: grabbing; }
aside { flex: 1; min-width: 260px; max-width: 560px; }
#cursor { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 12px; color: #445;
          min-height: 2.8em; white-space: pre-wrap; }
#cell-info { background: #fff; border: 1px solid #ccd; border-radius: 6px; padding: 8px 10px; min-height: 8em;
             font-size: 13px; overflow-wrap: anywhere; }
#cell-info .k { color: #667; }
#cell-info code, #cell-info pre { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 12px; }
#cell-info pre { margin: 2px 0 6px; white-space: pre-wrap; word-break: break-all; }
#help { color: #556; font-size: 12px; margin-top: 10px; }
.note { color: #a33; }
"""

TEMPLATE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<title>{title}</title>
<style>{css}</style>
</head>
<body>
<header><h1>{title}</h1><p id="summary">loading the cells...</p></header>
<div id="controls">
  <button id="color-mode" type="button" title="colour the cells by activation region or by linear region">colour: activation regions</button>
  <label id="layer-control">regions after layer <input id="layer" type="range" min="1" max="1" step="1" value="1"> <span id="layer-label"></span></label>
  <label id="checkpoint-control">checkpoint <input id="checkpoint" type="range" min="0" max="0" step="1" value="0"> <span id="checkpoint-label"></span></label>
  <label><input id="show-edges" type="checkbox" checked> cell edges</label>
  <label><input id="show-boundary" type="checkbox" checked> decision boundary</label>
  <button id="reset-view" type="button">reset view</button>
</div>
<main>
  <div id="stage"><canvas id="cells"></canvas><canvas id="overlay"></canvas></div>
  <aside>
    <div id="cursor"></div>
    <div id="cell-info" data-cell="">Hover a cell to see its pattern, area, affine map and bounding units.</div>
    <div id="help"></div>
  </aside>
</main>
<script type="application/json" id="piecewise-data">{data}</script>
<script>{js}</script>
</body>
</html>
"""

JS = r"""
(function () {
"use strict";
const T0 = performance.now();
const D = JSON.parse(document.getElementById("piecewise-data").textContent);
const $ = (id) => document.getElementById(id);
const DIGITS = "0123456789abcdefghijklmnopqrstuvwxyz";
const NPAL = 4096;          // palette size: cells i and i + 4096 share a colour
const DIRECT_ZOOM = 256;    // past this zoom the visible cells are always drawn from float64 coordinates
const DIRECT_CELLS = 20000; // ... and below this many (estimated) visible cells too
const MIN_EDGE_PX = 6;      // edges are drawn when the average cell is at least this wide on screen

// ---- data: base64 little-endian typed arrays, decoded per view on first use -----------------------------
function bytes(s) {
  if (typeof Uint8Array.fromBase64 === "function") return Uint8Array.fromBase64(s);
  const bin = atob(s), n = bin.length, a = new Uint8Array(n);
  for (let i = 0; i < n; i++) a[i] = bin.charCodeAt(i);
  return a;
}
function typed(s, T) {  // s: base64 (str) or the bytes inflated on load (Uint8Array)
  const b = typeof s === "string" ? bytes(s) : s;
  return new T(b.buffer, b.byteOffset, b.byteLength / T.BYTES_PER_ELEMENT);
}
async function inflate(b) {
  const out = new Blob([b]).stream().pipeThrough(new DecompressionStream("deflate"));
  return new Uint8Array(await new Response(out).arrayBuffer());
}
async function inflateAll() {  // the zlib-compressed arrays ({z: base64}) of every view, once
  const jobs = [];
  for (const ck of D.checkpoints) for (const v of ck.views) for (const key of Object.keys(v)) {
    const x = v[key];
    if (x && typeof x === "object" && typeof x.z === "string") jobs.push(inflate(bytes(x.z)).then((u) => { v[key] = u; }));
  }
  await Promise.all(jobs);
}

function decode(v) {
  if (v._c) return v._c;
  const C = v.regions, nv = typed(v.nv, Uint16Array), off = new Int32Array(C + 1);
  for (let i = 0; i < C; i++) off[i + 1] = off[i] + nv[i];
  const V = typed(v.V, Float64Array), bb = new Float64Array(4 * C);
  for (let i = 0; i < C; i++) {
    let x0 = Infinity, y0 = Infinity, x1 = -Infinity, y1 = -Infinity;
    for (let q = 2 * off[i]; q < 2 * off[i + 1]; q += 2) {
      const x = V[q], y = V[q + 1];
      if (x < x0) x0 = x; if (x > x1) x1 = x; if (y < y0) y0 = y; if (y > y1) y1 = y;
    }
    bb[4 * i] = x0; bb[4 * i + 1] = y0; bb[4 * i + 2] = x1; bb[4 * i + 3] = y1;
  }
  v._c = { C, off, V, bb, E: typed(v.E, Int32Array), W: typed(v.W, Uint32Array), M: typed(v.M, Float64Array),
           LR: v.LR ? typed(v.LR, Int32Array) : null, maps: v.maps ? typed(v.maps, Float32Array) : null,
           B: v.boundary ? typed(v.boundary, Float64Array) : null, paths: {}, edges: null, grid: null, stamp: null };
  return v._c;
}

// ---- bucket grid and point location ---------------------------------------------------------------
function grid(c) {
  if (c.grid) return c.grid;
  const G = Math.max(1, Math.min(1024, Math.ceil(Math.sqrt(c.C / 2))));
  const at = (x) => Math.min(G - 1, Math.max(0, Math.floor(x * G)));
  const start = new Int32Array(G * G + 1);
  for (let pass = 0; pass < 2; pass++) {
    const cur = pass ? start.slice(0, G * G) : null, items = pass ? new Int32Array(start[G * G]) : null;
    for (let i = 0; i < c.C; i++) {
      const ax = at(c.bb[4 * i]), ay = at(c.bb[4 * i + 1]), bx = at(c.bb[4 * i + 2]), by = at(c.bb[4 * i + 3]);
      for (let y = ay; y <= by; y++) for (let x = ax; x <= bx; x++) {
        if (pass) items[cur[y * G + x]++] = i; else start[y * G + x + 1]++;
      }
    }
    if (!pass) for (let k = 0; k < G * G; k++) start[k + 1] += start[k];
    else c.grid = { G, start, items, at };
  }
  return c.grid;
}

function inside(c, i, s, t, tol) {  // convex, counter-clockwise polygon: (s, t) left of (or on) every edge
  const o = c.off[i], n = c.off[i + 1] - o, V = c.V;
  for (let j = 0; j < n; j++) {
    const a = 2 * (o + j), b = 2 * (o + (j + 1) % n);
    const ex = V[b] - V[a], ey = V[b + 1] - V[a + 1];
    if (ex * (t - V[a + 1]) - ey * (s - V[a]) < -tol * Math.hypot(ex, ey)) return false;
  }
  return true;
}

function locate(c, s, t) {
  if (!(s >= 0 && s <= 1 && t >= 0 && t <= 1)) return -1;
  const g = grid(c), k = g.at(t) * g.G + g.at(s);
  for (const tol of [0, 1e-9]) {
    for (let q = g.start[k]; q < g.start[k + 1]; q++) if (inside(c, g.items[q], s, t, tol)) return g.items[q];
  }
  return -1;
}

function pattern(v, c, i) {  // one string per hidden layer, one digit (state) per unit
  const bits = v.bits, ph = Math.floor(16 / bits), mask = (1 << bits) - 1, nw = v.nwords;
  const sep = (1 << bits) > 36 ? "." : "";
  const out = [];
  let u = 0;
  for (const w of v.widths) {
    const ch = new Array(w);
    for (let j = 0; j < w; j++, u++) {
      const half = Math.floor(u / ph), shift = (half & 1) * 16 + (u % ph) * bits;
      const st = (c.W[i * nw + (half >> 1)] >>> shift) & mask;
      ch[j] = sep ? String(st) : DIGITS[st];
    }
    out.push(ch.join(sep));
  }
  return out;
}

// ---- colours ----------------------------------------------------------------------------------------
const PALETTE = (function () {
  let a = 0x2545f491;
  const rnd = () => { a = (a + 0x6d2b79f5) | 0; let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t; return ((t ^ (t >>> 14)) >>> 0) / 4294967296; };
  const seen = new Set(), out = [];
  while (out.length < NPAL) {
    const r = 60 + Math.floor(rnd() * 180), g = 60 + Math.floor(rnd() * 180), b = 60 + Math.floor(rnd() * 180);
    const key = (r << 16) | (g << 8) | b;
    if (seen.has(key) || (r > 190 && g < 110 && b < 110)) continue;  // distinct, and none near the boundary's red
    seen.add(key); out.push([r, g, b]);
  }
  return out;
})();
const CSSCOL = PALETTE.map((p) => `rgb(${p[0]},${p[1]},${p[2]})`);
function colorIndex(c, mode, i) { return ((mode === "linear" && c.LR) ? c.LR[i] : i) % NPAL; }

// ---- state ------------------------------------------------------------------------------------------
const S = { ck: 0, layer: D.depth, mode: "activation", x0: 0, y0: 0, k: 1, hover: -1, size: 600, dpr: 1,
            drawMs: 0, drag: null };
function view() {
  const vs = D.checkpoints[S.ck].views;
  return vs.find((v) => v.layer === S.layer) || vs[vs.length - 1];
}
function cur() { return decode(view()); }

// ---- drawing ----------------------------------------------------------------------------------------
const canvas = $("cells"), overlay = $("overlay"), ctx = canvas.getContext("2d"), octx = overlay.getContext("2d");
function layout() {
  const dpr = window.devicePixelRatio || 1;
  const size = Math.round(Math.max(300, Math.min(900, window.innerHeight - 130, window.innerWidth - 330)));
  S.size = size; S.dpr = dpr;
  for (const cv of [canvas, overlay]) {
    cv.width = Math.round(size * dpr); cv.height = Math.round(size * dpr);
    cv.style.width = size + "px"; cv.style.height = size + "px";
  }
  $("stage").style.width = (size + 2) + "px"; $("stage").style.height = (size + 2) + "px";
}
function T() { const P = S.size * S.dpr, kP = S.k * P; return { kP, P, cx: -S.x0 * kP, cy: P + S.y0 * kP }; }
function visibleCells(c) {  // ids of the cells whose bucket meets the view rectangle
  const g = grid(c), s0 = S.x0, t0 = S.y0, s1 = S.x0 + 1 / S.k, t1 = S.y0 + 1 / S.k;
  if (!c.stamp) c.stamp = new Int32Array(c.C);
  const mark = ++S.stampId, out = [];
  for (let y = g.at(t0); y <= g.at(t1); y++) for (let x = g.at(s0); x <= g.at(s1); x++) {
    const k = y * g.G + x;
    for (let q = g.start[k]; q < g.start[k + 1]; q++) {
      const i = g.items[q];
      if (c.stamp[i] === mark) continue;
      c.stamp[i] = mark;
      if (c.bb[4 * i + 2] >= s0 && c.bb[4 * i] <= s1 && c.bb[4 * i + 3] >= t0 && c.bb[4 * i + 1] <= t1) out.push(i);
    }
  }
  return out;
}
S.stampId = 0;
function addPoly(p, c, i, tf) {
  const o = c.off[i], n = c.off[i + 1] - o, V = c.V;
  if (tf) {
    p.moveTo(tf.cx + tf.kP * V[2 * o], tf.cy - tf.kP * V[2 * o + 1]);
    for (let j = 1; j < n; j++) p.lineTo(tf.cx + tf.kP * V[2 * (o + j)], tf.cy - tf.kP * V[2 * (o + j) + 1]);
  } else {
    p.moveTo(V[2 * o], V[2 * o + 1]);
    for (let j = 1; j < n; j++) p.lineTo(V[2 * (o + j)], V[2 * (o + j) + 1]);
  }
  p.closePath();
}
const BATCH = 256;  // polygons per Path2D: the rasteriser slows down sharply on paths of thousands of polygons
function batch(list, c, i, tf) {  // add polygon i to the last Path2D of list (a new one every BATCH polygons)
  if (!list.length || list.n === BATCH) { list.push(new Path2D()); list.n = 0; }
  addPoly(list[list.length - 1], c, i, tf); list.n++;
}
function fillPaths(c, mode, ids, tf) {  // per palette colour, Path2Ds of its cells: all (unit space) or ids (pixels)
  const out = new Array(NPAL);
  const each = (i) => { const k = colorIndex(c, mode, i); batch(out[k] || (out[k] = []), c, i, tf); };
  if (ids) ids.forEach(each); else for (let i = 0; i < c.C; i++) each(i);
  return out;
}
function draw() {
  const t0 = performance.now(), v = view(), c = decode(v), tf = T();
  const W = canvas.width;
  ctx.setTransform(1, 0, 0, 1, 0, 0);
  ctx.clearRect(0, 0, W, W);
  ctx.fillStyle = "#777";  // seams between cells show as faint grey lines
  ctx.fillRect(tf.cx, tf.cy - tf.kP, tf.kP, tf.kP);
  const direct = S.k > DIRECT_ZOOM || c.C / (S.k * S.k) < DIRECT_CELLS, ids = direct ? visibleCells(c) : null;
  let paths;
  if (direct) paths = fillPaths(c, S.mode, ids, tf);
  else {
    paths = c.paths[S.mode] || (c.paths[S.mode] = fillPaths(c, S.mode, null, null));
    ctx.setTransform(tf.kP, 0, 0, -tf.kP, tf.cx, tf.cy);
  }
  for (let k = 0; k < NPAL; k++) if (paths[k]) { ctx.fillStyle = CSSCOL[k]; for (const p of paths[k]) ctx.fill(p); }
  const px = direct ? 1 : 1 / tf.kP;  // one device pixel in the current coordinates
  if ($("show-edges").checked && tf.kP * tf.kP / c.C >= (MIN_EDGE_PX * S.dpr) ** 2) {
    let e = [];
    if (direct) for (const i of ids) batch(e, c, i, tf);
    else {
      if (!c.edges) { c.edges = []; for (let i = 0; i < c.C; i++) batch(c.edges, c, i, null); }
      e = c.edges;
    }
    ctx.lineWidth = 0.7 * S.dpr * px; ctx.strokeStyle = "rgba(20,20,30,0.75)";
    for (const p of e) ctx.stroke(p);
  }
  if (c.B && $("show-boundary").checked && c.B.length) {
    const B = c.B;
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.lineWidth = 2 * S.dpr; ctx.strokeStyle = "#e0101a"; ctx.lineCap = "round";
    for (let q0 = 0; q0 < B.length; q0 += 4 * BATCH) {
      const b = new Path2D();
      for (let q = q0; q < Math.min(B.length, q0 + 4 * BATCH); q += 4) {
        b.moveTo(tf.cx + tf.kP * B[q], tf.cy - tf.kP * B[q + 1]);
        b.lineTo(tf.cx + tf.kP * B[q + 2], tf.cy - tf.kP * B[q + 3]);
      }
      ctx.stroke(b);
    }
  }
  ctx.setTransform(1, 0, 0, 1, 0, 0);
  drawHover();
  S.drawMs = performance.now() - t0;
  API.timing.drawMs = S.drawMs;
  summary();
}
function drawHover() {
  octx.setTransform(1, 0, 0, 1, 0, 0);
  octx.clearRect(0, 0, overlay.width, overlay.height);
  if (S.hover < 0) return;
  const c = cur(), p = new Path2D();
  addPoly(p, c, S.hover, T());
  octx.lineWidth = 2.5 * S.dpr; octx.strokeStyle = "#fff"; octx.stroke(p);
  octx.lineWidth = 1.2 * S.dpr; octx.strokeStyle = "#000"; octx.stroke(p);
}
let pending = false;
function redraw() { if (!pending) { pending = true; requestAnimationFrame(() => { pending = false; draw(); }); } }

// ---- text -------------------------------------------------------------------------------------------
const esc = (s) => String(s).replace(/[&<>"]/g, (ch) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" }[ch]));
function fmt(x) {
  if (x === 0) return "0";
  const a = Math.abs(x);
  return (a >= 1e-3 && a < 1e6) ? String(Number(x.toPrecision(6))) : x.toExponential(4);
}
function toX(s, t) {  // input coordinates of the domain's parameters (s, t)
  const o = D.origin, A = D.axes;
  return o.map((x, j) => x + s * A[0][j] + t * A[1][j]);
}
function mapText(v, c, i) {
  if (!c.maps) return `<span class="k">output map:</span> shown on the full network (layer ${D.depth}); this view is the ` +
    `sub-network of the first ${v.layer} layer${v.layer > 1 ? "s" : ""}`;
  const box = v.coords === "x", n = v.nout, a = box ? "x1" : "s", b = box ? "x2" : "t";
  const where = box ? "input coordinates x1, x2" : "the plane's parameters s, t: x = p0 + s (p1 \u2212 p0) + t (p2 \u2212 p0)";
  const term = (g, name) => (g < 0 ? " \u2212 " : " + ") + fmt(Math.abs(g)) + "\u00b7" + name;
  const lines = [];
  for (let o = 0; o < Math.min(n, 10); o++) {
    const q = 3 * (i * n + o), g1 = c.maps[q], g2 = c.maps[q + 1], off = c.maps[q + 2];
    lines.push(`y${n > 1 ? "[" + o + "]" : ""} = ${fmt(g1)}\u00b7${a}${term(g2, b)}${off < 0 ? " \u2212 " : " + "}${fmt(Math.abs(off))}`);
  }
  if (n > 10) lines.push(`... (${n - 10} more outputs)`);
  return `<span class="k">output map (affine, in ${where}):</span><pre>${esc(lines.join("\n"))}</pre>`;
}
function bounding(c, i) {
  const seen = [], o = c.off[i];
  for (let q = o; q < c.off[i + 1]; q++) { const name = D.labels[c.E[q]]; if (!seen.includes(name)) seen.push(name); }
  return seen;
}
function info(i) {
  const el = $("cell-info"), v = view(), c = cur();
  if (i < 0) { el.dataset.cell = ""; el.innerHTML = "outside the domain"; return; }
  const pat = pattern(v, c, i), what = D.graph ? "stage" : "layer";
  const area = D.kind === "box" ? "area (input coordinates)" : "area (within the plane, input coordinates)";
  const lin = c.LR ? ` \u00b7 linear region ${c.LR[i]} of ${v.linear}` : "";
  el.dataset.cell = String(i);
  el.innerHTML =
    `<div><b>cell ${i}</b> <span class="k">of ${v.regions}${lin}</span></div>` +
    `<div class="k">activation pattern (one digit per unit, units from 0):</div><pre>` +
    pat.map((p, l) => `${what} ${l + 1}: ${esc(p)}`).join("\n") + `</pre>` +
    `<div><span class="k">${area}:</span> ${fmt(c.M[i])} <span class="k">(${fmt(100 * c.M[i] / D.measure)}% of the domain)</span></div>` +
    `<div>${mapText(v, c, i)}</div>` +
    `<div><span class="k">bounded by:</span> ${bounding(c, i).map(esc).join("; ")}</div>`;
}
function summary() {
  const v = view(), K = D.checkpoints.length;
  const parts = [`${v.regions} activation regions`];
  if (v.linear != null) parts.push(`${v.linear} linear regions` + (v.layer < D.depth ? ` (of x \u2192 h${v.layer})` : ""));
  if (!D.graph) parts.push(`after layer ${v.layer} of ${D.depth}`);
  if (K > 1) parts.push(`checkpoint ${S.ck + 1} of ${K}`);
  parts.push(`colour: ${S.mode} regions`, `zoom ${fmt(S.k)}\u00d7`, `drawn in ${S.drawMs.toFixed(0)} ms`);
  $("summary").textContent = D.network + " \u00b7 " + parts.join(" \u00b7 ");
  $("layer-label").textContent = `${v.layer} / ${D.depth}`;
  $("checkpoint-label").textContent = `${S.ck + 1} / ${K}`;
  const mb = $("color-mode");
  mb.textContent = `colour: ${S.mode} regions`;
  mb.disabled = !v.LR;
  mb.title = v.LR ? "toggle: colour by activation region / by linear region" : (v.linear_note || "no linear regions");
  $("show-boundary").disabled = !v.boundary;
}
function cursorText(s, t) {
  let txt = `s = ${fmt(s)}, t = ${fmt(t)}`;
  if (D.kind === "box") { const x = toX(s, t); txt = `x1 = ${fmt(x[0])}, x2 = ${fmt(x[1])}  (${txt})`; }
  const s1 = S.x0 + 1 / S.k, t1 = S.y0 + 1 / S.k;
  $("cursor").textContent = txt + `\nview: s in [${fmt(S.x0)}, ${fmt(s1)}], t in [${fmt(S.y0)}, ${fmt(t1)}]`;
}

// ---- interaction ------------------------------------------------------------------------------------
function toUnit(clientX, clientY) {
  const r = overlay.getBoundingClientRect(), kS = S.k * S.size;
  return [S.x0 + (clientX - r.left) / kS, S.y0 + (S.size - (clientY - r.top)) / kS];
}
function hoverAt(s, t) {
  const i = locate(cur(), s, t);
  cursorText(s, t);
  if (i !== S.hover) { S.hover = i; info(i); drawHover(); }
}
overlay.addEventListener("mousemove", (e) => {
  if (S.drag) {
    const kS = S.k * S.size;
    S.x0 = S.drag.x0 - (e.clientX - S.drag.cx) / kS; S.y0 = S.drag.y0 + (e.clientY - S.drag.cy) / kS;
    redraw(); return;
  }
  const [s, t] = toUnit(e.clientX, e.clientY);
  hoverAt(s, t);
});
overlay.addEventListener("mousedown", (e) => {
  S.drag = { cx: e.clientX, cy: e.clientY, x0: S.x0, y0: S.y0 }; overlay.classList.add("dragging");
});
window.addEventListener("mouseup", () => { S.drag = null; overlay.classList.remove("dragging"); });
overlay.addEventListener("mouseleave", () => { if (!S.drag) { S.hover = -1; drawHover(); } });
overlay.addEventListener("wheel", (e) => {
  e.preventDefault();
  const [s, t] = toUnit(e.clientX, e.clientY);
  const k = Math.min(1e9, Math.max(0.5, S.k * Math.exp(-e.deltaY * 0.0015)));
  S.x0 = s - (s - S.x0) * S.k / k; S.y0 = t - (t - S.y0) * S.k / k; S.k = k;
  redraw();
}, { passive: false });
$("color-mode").addEventListener("click", () => API.setMode(S.mode === "activation" ? "linear" : "activation"));
$("layer").addEventListener("input", (e) => API.setLayer(Number(e.target.value)));
$("checkpoint").addEventListener("input", (e) => API.setCheckpoint(Number(e.target.value)));
$("show-edges").addEventListener("change", () => draw());
$("show-boundary").addEventListener("change", () => draw());
$("reset-view").addEventListener("click", () => API.resetView());
window.addEventListener("resize", () => { layout(); draw(); });

function changed() { S.hover = -1; info(-1); $("cell-info").innerHTML = "Hover a cell."; draw(); }

// ---- the page's API: window.piecewise ----------------------------------------------------------------
const API = {
  /** number of activation regions of the view shown (on load: the full network, first checkpoint) */
  get regions() { return view().regions; },
  /** number of linear regions of the view shown (null where not computed) */
  get linearRegions() { return view().linear; },
  get layer() { return S.layer; }, get depth() { return D.depth; }, get checkpoint() { return S.ck; },
  get checkpoints() { return D.checkpoints.length; }, get mode() { return S.mode; },
  get view() { return { x0: S.x0, y0: S.y0, zoom: S.k }; },
  /** the cell at the domain's parameters (s, t) in [0, 1]^2: {id, pattern, measure} or null outside */
  cellAt(s, t) {
    if (!API.ready) throw new Error("window.piecewise is not ready: await window.piecewise.whenReady");
    const v = view(), c = decode(v), i = locate(c, Number(s), Number(t));
    return i < 0 ? null : { id: i, pattern: pattern(v, c, i), measure: c.M[i] };
  },
  /** [r, g, b] (0..255) with which cell id is filled in the current colour mode */
  colorOf(id) { return PALETTE[colorIndex(cur(), S.mode, id)].slice(); },
  /** client (CSS pixel) coordinates of the domain point (s, t) in the current view */
  toPixel(s, t) {
    const r = overlay.getBoundingClientRect(), kS = S.k * S.size;
    return { x: r.left + (s - S.x0) * kS, y: r.top + S.size - (t - S.y0) * kS };
  },
  setLayer(l) {
    l = Math.max(1, Math.min(D.depth, Math.round(l)));
    S.layer = l; $("layer").value = String(l);
    if (!view().LR && S.mode === "linear") S.mode = "activation";
    changed(); return this.regions;
  },
  setCheckpoint(k) {
    S.ck = Math.max(0, Math.min(D.checkpoints.length - 1, Math.round(k))); $("checkpoint").value = String(S.ck);
    changed(); return this.regions;
  },
  setMode(m) {
    if (m !== "activation" && m !== "linear") throw new Error("mode is 'activation' or 'linear'");
    if (m === "linear" && !view().LR) return S.mode;
    S.mode = m; draw(); return S.mode;
  },
  setView(x0, y0, zoom) { S.x0 = x0; S.y0 = y0; S.k = zoom; draw(); },
  resetView() { S.x0 = 0; S.y0 = 0; S.k = 1; draw(); },
  /** draw now; resolves to the milliseconds until the second animation frame after it (the drawing rasterised
   *  and shown: an upper bound of the time a pan or zoom step takes, at least one frame) */
  async redraw() {
    const t = performance.now();
    draw();
    await new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
    return performance.now() - t;
  },
  timing: {},
  ready: false,
  version: D.version,
};
window.piecewise = API;

// ---- start ------------------------------------------------------------------------------------------
$("layer").max = String(D.depth); $("layer").value = String(D.depth);
if (D.depth <= 1) $("layer-control").style.display = "none";
$("checkpoint").max = String(D.checkpoints.length - 1);
if (D.checkpoints.length <= 1) $("checkpoint-control").style.display = "none";
const dom = D.domain;
$("help").innerHTML = esc(D.kind === "box"
    ? `Domain: the box [${dom.lo.map(fmt)}] to [${dom.hi.map(fmt)}]; horizontal x1 (s), vertical x2 (t).`
    : `Domain: the plane p0 + s (p1 \u2212 p0) + t (p2 \u2212 p0), s, t in [0, 1]; horizontal s, vertical t.`) +
  "<br>Wheel: zoom; drag: pan. Activation region: one activation pattern (a convex cell). Linear region: " +
  "neighbouring cells with one affine map merged. Red: the decision boundary (" +
  esc(view().nout > 1 ? "the top two outputs tie" : `output = ${D.threshold}`) + `). piecewise ${esc(D.version)}.` +
  (D.graph ? " Graphs (ONNX, ...): the full network only." : "");
layout();
API.whenReady = (async () => {
  const t1 = performance.now();
  await inflateAll();
  const t2 = performance.now();
  decode(view());
  grid(cur());
  API.timing.inflateMs = t2 - t1;
  API.timing.decodeMs = performance.now() - t2;
  draw();
  API.timing.firstDrawMs = S.drawMs;
  API.timing.readyMs = performance.now();   // since the page's time origin (navigation start)
  API.timing.scriptMs = performance.now() - T0;
  API.ready = true;
  document.documentElement.dataset.ready = "1";
  return true;
})();
API.whenReady.catch((e) => { $("summary").textContent = "error: " + e; throw e; });
})();
"""


def render(data: dict) -> str:
    """The page for the explorer's ``data`` (:func:`piecewise.explore._page.build_page`): one HTML string."""
    blob = json.dumps(data, separators=(",", ":"), ensure_ascii=True, allow_nan=False)
    blob = blob.replace("<", "\\u003c")  # only inside JSON strings: no "</script>" can end the block early
    title = html.escape(str(data.get("title", "piecewise explorer")))
    return TEMPLATE.format(title=title, css=CSS, data=blob, js=JS)

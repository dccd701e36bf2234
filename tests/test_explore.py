"""The HTML explorer (:mod:`piecewise.explore`) in a real browser: headless Chromium (Debian's ``chromium``,
never a downloaded one) driven by playwright, one browser for the module.

Every page is served from a route that answers the page's own URL and aborts (and records) any other request,
so a page that fetched anything (a script, a font, a favicon) fails; one test also opens the page from file://.
The page's answers are checked against the Python API: the count, ``cellAt`` at a point inside every cell
(ids, patterns, measures), the hover panel (id, pattern, affine map, the units bounding the cell, checked on
the network's pre-activations), the colour toggle and the layer / checkpoint sliders, and the pixels of a
screenshot. Chromium is looked up on PATH and at /usr/bin/chromium (or ``$PIECEWISE_CHROMIUM``); without
one the browser tests are skipped (CI installs it: .ci/run).
"""
from __future__ import annotations

import io
import os
import re
import shutil
import time

import jax
import numpy as np
import pytest

import piecewise
from piecewise.errors import PiecewiseError
from piecewise.explore import build_page

from conftest import random_params


def _chromium():
    for p in (os.environ.get("PIECEWISE_CHROMIUM"), shutil.which("chromium"), "/usr/bin/chromium",
              shutil.which("chromium-browser")):
        if p and os.path.exists(p):
            return p
    return None


CHROMIUM = _chromium()
URL = "http://piecewise.test/page.html"  # answered by the route with the page; every other request fails


@pytest.fixture(scope="module")
def browser():
    if CHROMIUM is None:
        pytest.skip("no chromium binary found (apt-get install chromium; or set PIECEWISE_CHROMIUM)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM)
        yield b
        b.close()


class Page:
    """A page of ``browser`` showing the HTML file ``path``, with what went wrong recorded: page errors,
    console errors and warnings, requests for anything but the page itself."""

    def __init__(self, browser, path, via_file: bool = False):
        self.errors, self.requests = [], []
        self.page = p = browser.new_page(viewport={"width": 1280, "height": 900})
        p.on("pageerror", lambda e: self.errors.append(f"pageerror: {e}"))
        p.on("console", lambda m: self.errors.append(f"console.{m.type}: {m.text}")
             if m.type in ("error", "warning") else None)
        p.on("request", lambda r: self.requests.append(r.url))
        url = "file://" + os.path.abspath(path) if via_file else URL
        body = open(path, "rb").read()

        def route(r):
            if r.request.url == url and via_file:
                r.continue_()
            elif r.request.url == url:
                r.fulfill(status=200, content_type="text/html; charset=utf-8", body=body)
            else:
                self.errors.append(f"request: {r.request.url}")
                r.abort()

        p.route("**/*", route)
        t0 = time.perf_counter()
        p.goto(url)
        p.wait_for_function("window.piecewise && window.piecewise.ready === true", timeout=120_000)
        self.load_s = time.perf_counter() - t0
        self.url = url

    def js(self, expr, arg=None):
        return self.page.evaluate(expr, arg)

    def check_clean(self):
        assert self.errors == []
        assert self.requests == [self.url], self.requests

    def close(self):
        self.check_clean()
        self.page.close()


def _strings(states):
    """Per-layer state arrays (C, w_l) -> per cell a list of digit strings (the page's pattern format)."""
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    C = len(states[0])
    return [["".join(digits[v] for v in s[i]) for s in states] for i in range(C)]


def _interior(cx):
    """One point strictly inside every cell, in u = (s, t) in [0, 1]^2: the mean of its vertices, (C, 2)."""
    return cx.points_c + 0.5


def _edge_clearance(cx, U):
    """Distance (in u) from U[i] to the nearest edge of cell i, (C,)."""
    out = np.empty(len(U))
    for i in range(cx.regions):
        V = cx.vertices[i, : cx.n_vertices[i]]
        W = np.roll(V, -1, 0)
        e = W - V
        n = np.hypot(e[:, 0], e[:, 1])
        out[i] = np.min(np.abs(e[:, 0] * (U[i, 1] - V[:, 1]) - e[:, 1] * (U[i, 0] - V[:, 0])) / n)
    return out


# ---- the networks ---------------------------------------------------------------------------------------
def _relu_box():
    net = piecewise.mlp(2, (8, 8), 3, "relu")
    return net, random_params(net, seed=0, bias_std=0.3), piecewise.box(-1.5, 1.5, 2)


def _hardtanh_plane():
    net = piecewise.mlp(3, (6, 6), 1, "hardtanh")
    P = np.array([[-1.0, -1.0, 0.2], [1.5, -0.5, -0.3], [-0.8, 1.2, 0.6]])
    return net, random_params(net, seed=1, bias_std=0.5), piecewise.plane(P)


def _maxout_box():
    net = piecewise.mlp(2, (5, 4), 2, "maxout:3")
    return net, random_params(net, seed=2, bias_std=0.3), piecewise.box(-1, 1, 2)


CASES = {"relu-box": _relu_box, "hardtanh-plane": _hardtanh_plane, "maxout-box": _maxout_box}


@pytest.fixture(scope="module")
def pages(tmp_path_factory):
    """name -> (net, params, domain, complex, page path, build summary), built once."""
    root = tmp_path_factory.mktemp("explore")
    out = {}
    for name, make in CASES.items():
        net, params, domain = make()
        cx = piecewise.enumerate_cells(net, params, domain, progress=False)
        info = build_page(net, params, domain, str(root / f"{name}.html"), title=f"test {name}")
        out[name] = (net, params, domain, cx, info["path"], info)
    return out


# ---- Python side: bad input ------------------------------------------------------------------------------
def test_bad_input(tmp_path):
    net, params, domain = _relu_box()
    ok = str(tmp_path / "p.html")
    cases = [
        (lambda: build_page(net, params, piecewise.segment([-1, 0], [1, 0]), ok), "2-D slice"),
        (lambda: build_page(piecewise.mlp(3, (4,), 1), random_params(piecewise.mlp(3, (4,), 1)),
                            piecewise.box(-1, 1, 3), ok), "3-D"),
        (lambda: build_page(net, params, domain, str(tmp_path / "missing" / "p.html")), "does not exist"),
        (lambda: build_page(net, params, domain, str(tmp_path / "p.png")), ".html"),
        (lambda: build_page(piecewise.mlp(2, (4,), 1, "tanh"), random_params(piecewise.mlp(2, (4,), 1, "tanh")),
                            domain, ok), "not piecewise linear"),
        (lambda: build_page(net, params[:-1], domain, ok), "pairs"),
        (lambda: build_page(net, params, domain, ok, threshold=float("nan")), "threshold"),
        (lambda: build_page(net, params, "box", ok), "domain"),
        (lambda: build_page(net, params, domain, ok, max_cells=10), "max_cells"),
    ]
    for fn, words in cases:
        with pytest.raises(PiecewiseError, match=re.escape(words)) as e:
            fn()
        assert "\n" not in str(e.value)
    assert not os.path.exists(ok)


def _cli_page(tmp_path, capsys):
    """Write a page with ``piecewise explore`` (in-process); return (page path, regions of ``piecewise count
    --method exact`` on the same box, the command's stdout)."""
    import json

    from piecewise.cli import main

    net = piecewise.mlp(2, (6, 6), 1, "leaky_relu:0.1")
    w = str(tmp_path / "w.npz")
    piecewise.save_npz(w, random_params(net, seed=3), net)
    out = str(tmp_path / "page.html")
    assert main(["explore", "--weights", w, "--box", "-2", "2", "--out", out, "--threshold", "0"]) == 0
    text = capsys.readouterr().out
    assert main(["count", "--weights", w, "--box", "-2", "2", "--method", "exact", "--json"]) == 0
    return out, json.loads(capsys.readouterr().out)["regions"], text, w


def test_cli(tmp_path, capsys):
    from piecewise.cli import main

    out, regions, text, w = _cli_page(tmp_path, capsys)
    assert f"activation regions (exact): {regions}" in text and out in text
    assert os.path.getsize(out) > 1000
    # bad input: one line on stderr, exit 2
    net3 = piecewise.mlp(3, (4,), 1)
    w3 = str(tmp_path / "w3.npz")
    piecewise.save_npz(w3, random_params(net3), net3)
    for argv, words in [(["--weights", w3, "--box", "-1", "1"], "2-D slice"),
                        (["--weights", w, "--out", str(tmp_path / "no" / "p.html")], "does not exist"),
                        (["--weights", w, "--activation", "relu"], "activation"),
                        (["--weights", w, "--box", "1", "-1"], "empty box"),
                        (["--weights", str(tmp_path / "none.npz")], "none.npz")]:
        assert main(["explore", *argv]) == 2
        err = capsys.readouterr().err
        assert words in err and err.count("\n") == 1, err


def test_cli_page_in_browser(browser, tmp_path, capsys):
    out, regions, _, _ = _cli_page(tmp_path, capsys)
    pg = Page(browser, out)
    assert pg.js("window.piecewise.regions") == regions
    assert pg.js("document.querySelector('#show-boundary').disabled") is False  # y = 0 crosses the box
    pg.close()


# ---- the browser: the page against the Python API --------------------------------------------------------
@pytest.mark.parametrize("name", list(CASES))
def test_cells_match_python(browser, pages, name):
    net, params, domain, cx, path, info = pages[name]
    pg = Page(browser, path)
    assert pg.js("window.piecewise.regions") == cx.regions == info["regions"]
    assert isinstance(pg.js("window.piecewise.regions"), int)
    U = _interior(cx)
    got = pg.js("U => U.map(([s, t]) => window.piecewise.cellAt(s, t))", U.tolist())
    assert all(g is not None for g in got)
    ids = [g["id"] for g in got]
    assert ids == list(range(cx.regions))  # distinct, and each the cell the point lies in
    want = _strings(piecewise.unpack_states(net, cx.patterns))
    assert [g["pattern"] for g in got] == want
    np.testing.assert_allclose([g["measure"] for g in got], cx.measure, rtol=1e-12)
    outside = [[-1e-9, 0.5], [0.5, 1 + 1e-9], [1.5, 0.5], [0.5, -2.0], [-1, -1], [2, 2]]
    assert pg.js("U => U.map(([s, t]) => window.piecewise.cellAt(s, t))", outside) == [None] * len(outside)
    corners = pg.js("[[0, 0], [1, 0], [1, 1], [0, 1]].map(([s, t]) => window.piecewise.cellAt(s, t))")
    assert all(c is not None for c in corners)
    pg.close()


def _preact(net, params, x):
    """Pre-activations of every hidden layer of a relu/leaky MLP at points x (m, n_in), float64: list of (m, w)."""
    out, h = [], np.asarray(x, np.float64)
    for W, b in params[:-1]:
        z = h @ W + b
        out.append(z)
        h = np.maximum(z, 0.0)
    return out


def test_hover(browser, pages):
    net, params, domain, cx, path, _ = pages["relu-box"]
    pg = Page(browser, path)
    U = _interior(cx)
    clear = _edge_clearance(cx, U)
    size = pg.js("document.querySelector('#cells').getBoundingClientRect().width")
    cells = [int(i) for i in np.argsort(-clear)[:12] if clear[i] * size > 3]
    assert len(cells) >= 8
    J = cx.jacobian()  # (C, n_out, 2) dy/dx
    b = cx.offset - np.einsum("i,coi->co", domain.origin, J)
    pre = _preact(net, params, cx.points)
    for i in cells:
        xy = pg.js("([s, t]) => window.piecewise.toPixel(s, t)", U[i].tolist())
        pg.page.mouse.move(xy["x"], xy["y"])
        assert pg.js("document.querySelector('#cell-info').dataset.cell") == str(i)
        text = pg.page.inner_text("#cell-info")
        assert f"cell {i} " in text
        pat = _strings(piecewise.unpack_states(net, cx.patterns[i:i + 1]))[0]
        for l, p in enumerate(pat):
            assert f"layer {l + 1}: {p}" in text
        area = float(re.search(r"area \(input coordinates\): (\S+)", text).group(1))
        assert area == pytest.approx(cx.measure[i], rel=1e-5)
        # the affine map: y[o] = g1·x1 ± g2·x2 ± b in input coordinates, against the complex's Jacobian
        assert "input coordinates x1, x2" in text
        for o in range(net.n_out):
            m = re.search(rf"y\[{o}\] = (\S+)·x1 ([+−]) (\S+)·x2 ([+−]) (\S+)", text)
            sign = lambda s: -1.0 if s == "−" else 1.0  # noqa: E731
            g1, g2, c = float(m.group(1)), sign(m.group(2)) * float(m.group(3)), sign(m.group(4)) * float(m.group(5))
            np.testing.assert_allclose([g1, g2, c], [J[i, o, 0], J[i, o, 1], b[i, o]], rtol=1e-4, atol=1e-6)
        # the bounding units: each named unit's pre-activation vanishes along one of the cell's edges, and the
        # cell has one named unit or domain side per edge
        names = re.search(r"bounded by: (.*)", text).group(1).split("; ")
        V = cx.cell_vertices(i)
        mids = 0.5 * (V + np.roll(V, -1, 0))
        Z = _preact(net, params, mids)
        for nm in names:
            m = re.fullmatch(r"layer (\d+) unit (\d+)", nm)
            if m is None:
                assert re.fullmatch(r"domain edge x[12] = -?1\.5", nm), nm
                continue
            l, u = int(m.group(1)) - 1, int(m.group(2))
            scale = np.abs(pre[l][i, u]) + 1e-12
            assert np.min(np.abs(Z[l][:, u])) < 1e-9 * max(1.0, scale), nm
        assert 0 < len(names) <= cx.n_vertices[i]
    pg.page.mouse.move(5, 5)
    pg.close()


def _screenshot(pg):
    """The cells' canvas as an (H, W, 3) uint8 array, and its top-left in client pixels."""
    from PIL import Image

    loc = pg.page.locator("#cells")
    img = np.asarray(Image.open(io.BytesIO(loc.screenshot())).convert("RGB")).astype(np.int32)
    r = pg.js("(() => { const r = document.querySelector('#cells').getBoundingClientRect(); return [r.left, r.top]; })()")
    return img, r


def test_screenshot_pixels(browser, pages):
    net, params, domain, cx, path, _ = pages["relu-box"]
    pg = Page(browser, path)
    pg.page.mouse.move(2, 2)
    pg.page.uncheck("#show-edges")
    pg.page.uncheck("#show-boundary")
    img, (left, top) = _screenshot(pg)
    assert img.shape[0] >= 300 and img.shape[1] >= 300
    colours = np.unique(img.reshape(-1, 3), axis=0)
    assert len(colours) >= cx.regions
    U = _interior(cx)
    clear = _edge_clearance(cx, U) * img.shape[1]
    big = np.nonzero(clear > 3)[0]
    assert len(big) >= cx.regions // 3
    want = np.array(pg.js("ids => ids.map((i) => window.piecewise.colorOf(i))", big.tolist()))
    xy = pg.js("U => U.map(([s, t]) => window.piecewise.toPixel(s, t))", U[big].tolist())
    px = np.array([[int(p["x"] - left), int(p["y"] - top)] for p in xy])
    got = img[px[:, 1], px[:, 0]]
    assert np.all(np.abs(got - want) <= 1), np.nonzero(np.abs(got - want).max(1) > 1)
    # edges and the decision boundary (3 outputs: where the top two tie) draw dark and red pixels
    pg.page.check("#show-edges")
    pg.page.check("#show-boundary")
    img2, _ = _screenshot(pg)
    red = (img2[..., 0] > 200) & (img2[..., 1] < 60) & (img2[..., 2] < 60)
    assert red.sum() > 50
    pg.close()


def test_toggle_and_sliders(browser, tmp_path):
    net = piecewise.mlp(2, (6, 5), 1, "relu")
    params = list(random_params(net, seed=4, bias_std=0.4))
    W2 = params[2][0].copy()
    W2[:2] = 0.0  # two units of layer 2 do not reach the output: the cells they split share one affine map
    params[2] = (W2, params[2][1])
    params = tuple(params)
    domain = piecewise.box(-2, 2, 2)
    cx = piecewise.enumerate_cells(net, params, domain, progress=False)
    n_lin, lab = cx.linear_regions()
    assert n_lin < cx.regions
    path = build_page(net, params, domain, str(tmp_path / "t.html"))["path"]
    pg = Page(browser, path)
    assert pg.js("window.piecewise.linearRegions") == n_lin
    assert pg.js("window.piecewise.mode") == "activation"
    act = pg.js("n => Array.from({length: n}, (_, i) => window.piecewise.colorOf(i).join())", cx.regions)
    assert len(set(act)) == cx.regions
    pg.page.click("#color-mode")
    assert pg.js("window.piecewise.mode") == "linear"
    assert "linear" in pg.page.inner_text("#color-mode")
    lin = pg.js("n => Array.from({length: n}, (_, i) => window.piecewise.colorOf(i).join())", cx.regions)
    assert len(set(lin)) == n_lin
    assert all((lin[a] == lin[b]) == (lab[a] == lab[b]) for a in range(cx.regions) for b in range(a))
    pg.page.click("#color-mode")
    assert pg.js("window.piecewise.mode") == "activation"
    # layer slider: the regions of the first hidden layer alone, counted independently
    net1 = piecewise.mlp(2, (6,), 1, "relu")
    cx1 = piecewise.enumerate_cells(net1, (params[0], (np.ones((6, 1)), np.zeros(1))), domain, progress=False)
    pg.page.fill("#layer", "1")
    assert pg.js("window.piecewise.layer") == 1
    assert pg.js("window.piecewise.regions") == cx1.regions < cx.regions
    assert "after layer 1 of 2" in pg.page.inner_text("#summary")
    got = pg.js("U => U.map(([s, t]) => window.piecewise.cellAt(s, t))", _interior(cx1).tolist())
    assert [g["id"] for g in got] == list(range(cx1.regions))
    assert [g["pattern"] for g in got] == _strings(piecewise.unpack_states(net1, cx1.patterns))
    xy = pg.js("([s, t]) => window.piecewise.toPixel(s, t)", _interior(cx1)[0].tolist())
    pg.page.mouse.move(xy["x"], xy["y"])
    text = pg.page.inner_text("#cell-info")
    assert "layer 1:" in text and "layer 2:" not in text and "shown on the full network" in text
    pg.page.fill("#layer", "2")
    assert pg.js("window.piecewise.regions") == cx.regions
    pg.close()


def test_zoom_pan(browser, pages):
    net, params, domain, cx, path, _ = pages["relu-box"]
    pg = Page(browser, path)
    U = _interior(cx)
    clear = _edge_clearance(cx, U)
    r = pg.js("(() => { const r = document.querySelector('#overlay').getBoundingClientRect(); return [r.left, r.top, r.width]; })()")
    cxp, cyp = r[0] + r[2] / 2, r[1] + r[2] / 2
    pg.page.mouse.move(cxp, cyp)
    pg.page.mouse.wheel(0, -600)
    pg.page.wait_for_function("window.piecewise.view.zoom > 1.5")
    v = pg.js("window.piecewise.view")
    # zoom about the cursor: the domain point under it stays
    assert v["x0"] + 0.5 / v["zoom"] == pytest.approx(0.5, abs=1e-9)
    # drag: the view moves with the mouse
    pg.page.mouse.down()
    pg.page.mouse.move(cxp + 100, cyp + 50, steps=4)
    pg.page.mouse.up()
    w = pg.js("window.piecewise.view")
    assert w["x0"] == pytest.approx(v["x0"] - 100 / (v["zoom"] * r[2]), rel=1e-6)
    assert w["y0"] == pytest.approx(v["y0"] + 50 / (v["zoom"] * r[2]), rel=1e-6)
    # hovering after zoom and pan, and at a deep zoom (drawn from float64 coordinates), finds the right cells
    for zoom in (None, 5000.0):
        for i in [int(j) for j in np.argsort(-clear)[:30]]:
            if zoom is not None:
                pg.js("([s, t, k]) => window.piecewise.setView(s - 0.3 / k, t - 0.6 / k, k)", [*U[i].tolist(), zoom])
            xy = pg.js("([s, t]) => window.piecewise.toPixel(s, t)", U[i].tolist())
            if not (r[0] + 2 < xy["x"] < r[0] + r[2] - 2 and r[1] + 2 < xy["y"] < r[1] + r[2] - 2):
                continue
            pg.page.mouse.move(xy["x"], xy["y"])
            assert pg.js("document.querySelector('#cell-info').dataset.cell") == str(i)
    pg.page.click("#reset-view")
    assert pg.js("window.piecewise.view") == {"x0": 0, "y0": 0, "zoom": 1}
    pg.close()


def test_file_url(browser, pages):
    """Opened from disk as a user would: the one request is the file itself."""
    *_, cx, path, _ = pages["hardtanh-plane"]
    pg = Page(browser, path, via_file=True)
    assert pg.js("window.piecewise.regions") == cx.regions
    assert pg.js("window.piecewise.cellAt(0.5, 0.5)") is not None
    pg.close()


def test_checkpoints_and_graph(browser, tmp_path):
    net = piecewise.mlp(2, (6, 6), 2, "relu")
    p0, p1 = random_params(net, seed=5), random_params(net, seed=6)
    domain = piecewise.box(-1, 1, 2)
    c0, c1 = (piecewise.enumerate_cells(net, p, domain, progress=False) for p in (p0, p1))
    path = piecewise.explore(net, [p0, p1], domain, out=str(tmp_path / "ck.html"))
    pg = Page(browser, path)
    assert pg.js("window.piecewise.checkpoints") == 2
    assert pg.js("window.piecewise.regions") == c0.regions
    pg.page.fill("#checkpoint", "1")
    assert pg.js("window.piecewise.checkpoint") == 1
    assert pg.js("window.piecewise.regions") == c1.regions
    got = pg.js("U => U.map(([s, t]) => window.piecewise.cellAt(s, t).id)", _interior(c1).tolist())
    assert got == list(range(c1.regions))
    pg.close()
    # a graph (as ONNX models load): the full network only
    from piecewise.graph import from_mlp

    g = from_mlp(net, p0)
    cg = piecewise.enumerate_cells(g, None, domain, progress=False)
    path = piecewise.explore(g, None, domain, out=str(tmp_path / "g.html"))
    pg = Page(browser, path)
    assert pg.js("window.piecewise.regions") == cg.regions == c0.regions
    assert pg.js("window.piecewise.depth") == 1
    assert not pg.page.is_visible("#layer")
    got = pg.js("U => U.map(([s, t]) => window.piecewise.cellAt(s, t).id)", _interior(cg).tolist())
    assert got == list(range(cg.regions))
    pg.close()


def _big(widths, lo, n_out, tmp_path, browser, checks=500):
    net = piecewise.mlp(2, widths, n_out, "relu")
    params = net.init(key=jax.random.key(0), bias_std=1.0)
    domain = piecewise.box(-lo, lo, 2)
    t0 = time.perf_counter()
    info = build_page(net, params, domain, str(tmp_path / "big.html"))
    build_s = time.perf_counter() - t0
    cx = piecewise.enumerate_cells(net, params, domain, progress=False)
    pg = Page(browser, info["path"], via_file=True)  # the route would add its own transfer of the page
    timing = pg.js("window.piecewise.timing")
    assert pg.js("window.piecewise.regions") == cx.regions
    pick = np.random.default_rng(0).choice(cx.regions, size=min(checks, cx.regions), replace=False)
    got = pg.js("U => U.map(([s, t]) => window.piecewise.cellAt(s, t).id)", _interior(cx)[pick].tolist())
    assert got == pick.tolist()
    lookup_ms = pg.js("""() => { const t = performance.now(); let n = 0;
        for (let i = 0; i < 10000; i++) if (window.piecewise.cellAt((i * 0.6180339) % 1, (i * 0.4142135) % 1)) n++;
        return (performance.now() - t) / 10000; }""")
    redraw_ms = pg.js("window.piecewise.redraw()")
    print(f"\n{cx.regions} cells: page {info['bytes'] / 1e6:.2f} MB, build {build_s:.2f} s, load {pg.load_s:.2f} s "
          f"(ready at {timing['readyMs']:.0f} ms: inflate {timing['inflateMs']:.0f} ms, decode "
          f"{timing['decodeMs']:.0f} ms, first draw {timing['firstDrawMs']:.0f} ms), redraw {redraw_ms:.0f} ms, "
          f"cellAt {1000 * lookup_ms:.1f} us")
    pg.close()
    return cx.regions, timing, redraw_ms, lookup_ms


def test_10k_cells(browser, tmp_path):
    C, timing, redraw_ms, lookup_ms = _big((48, 48, 48), 3, 3, tmp_path, browser)
    assert C > 5000
    assert timing["readyMs"] < 10_000 and redraw_ms < 2000 and lookup_ms < 0.1


@pytest.mark.slow
def test_100k_cells(browser, tmp_path):
    C, timing, redraw_ms, lookup_ms = _big((200, 200, 200), 3, 1, tmp_path, browser, checks=2000)
    assert C > 100_000
    assert timing["readyMs"] < 20_000 and redraw_ms < 3000 and lookup_ms < 0.1

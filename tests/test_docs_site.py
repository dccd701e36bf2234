"""The docs site builds with ``mkdocs build --strict`` (zero warnings) and shows what the code has: full
signatures from the real functions, the notebooks with their figures, every lazy export. Skipped without the
docs extra (``pip install -r docs/requirements.txt``)."""
import ast
import html.parser
import importlib.util
import inspect
import json
import os
import pathlib
import re
import subprocess
import sys

import pytest

for _mod in ("mkdocs", "material", "mkdocstrings", "mkdocstrings_handlers.python", "mkdocs_jupyter"):
    pytest.importorskip(_mod)

ROOT = pathlib.Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


class _Text(html.parser.HTMLParser):
    """The visible text inside a page's ``<article>``; every tag boundary becomes a space, so a signature
    reads ``f ( a : int = 1 )`` (:func:`squeeze` removes the spaces)."""

    def __init__(self):
        super().__init__()
        self.parts, self.depth, self.skip = [], 0, 0

    def handle_starttag(self, tag, attrs):
        if tag == "article":
            self.depth += 1
        if tag in ("script", "style"):
            self.skip += 1

    def handle_endtag(self, tag):
        if tag == "article":
            self.depth -= 1
        if tag in ("script", "style"):
            self.skip -= 1

    def handle_data(self, data):
        if self.depth > 0 and not self.skip:
            self.parts.append(data)


def page_text(site, rel) -> str:
    p = _Text()
    p.feed((site / rel).read_text())
    return re.sub(r"\s+", " ", " ".join(p.parts))


def squeeze(s: str) -> str:
    return re.sub(r"\s+", "", s)


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    out = tmp_path_factory.mktemp("site")
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1")
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(ROOT / "mkdocs.yml"),
                           "-d", str(out)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-4000:]
    assert "WARNING" not in log, [line for line in log.splitlines() if "WARNING" in line]
    return out


def test_pages_exist(site):
    for rel in ("index.html", "guides/counting/index.html", "guides/image-models/index.html",
                "guides/homeomorphisms/index.html", "guides/exact/index.html", "guides/cli/index.html",
                "scaling/index.html", "api/index.html", "reference/index.html", "reference/exact/index.html",
                "reference/search/index.html", "reference/invertibility/index.html"):
        assert (site / rel).is_file(), rel
    assert "Tiled exact counts" in page_text(site, "scaling/index.html")  # docs/scaling.md
    assert re.search(r'<a [^>]*href="(\./)?scaling/"', (site / "index.html").read_text())  # in the nav


def object_text(site, rel, ident) -> str:
    """The squeezed text of the page from the heading of object ``ident`` on (its signature comes first)."""
    doc = (site / rel).read_text()
    at = doc.index(f'id="{ident}"')
    p = _Text()
    p.depth = 1  # inside the article
    p.feed(doc[doc.index(">", at) + 1:])
    return squeeze(" ".join(p.parts))


def rendered_signature(text: str, name: str) -> str:
    """``name(...)`` as rendered, from the squeezed text of the object's section."""
    start = text.index(name + "(")
    depth = 0
    for k in range(start + len(name), len(text)):
        depth += {"(": 1, ")": -1}.get(text[k], 0)
        if depth == 0:
            return text[start:k + 1] + (text[k + 1:k + 1 + 80] if text.startswith("->", k + 1) else "")
    raise AssertionError(f"unbalanced signature of {name}")


def test_enumerate_cells_signature(site):
    from piecewise.regions.exact import enumerate_cells

    text = object_text(site, "reference/exact/index.html", "piecewise.regions.exact.enumerate_cells")
    rendered = rendered_signature(text, "enumerate_cells")
    pos = 0
    for p in inspect.signature(enumerate_cells).parameters.values():
        found = rendered.find(p.name, pos)
        assert found >= 0, (p.name, rendered)
        if p.annotation is not inspect.Parameter.empty:
            assert rendered[found:].startswith(f"{p.name}:{squeeze(str(p.annotation))}"), (p.name, rendered)
        if p.default is not inspect.Parameter.empty:
            assert re.match(re.escape(p.name) + r"(:[^=,]*)?=" + re.escape(repr(p.default)), rendered[found:]), p.name
        pos = found
    for p in ("domain", "max_cells", "keep_cells", "memory_budget"):  # the Args section documents them
        assert text.count(p) >= 2, p


@pytest.mark.parametrize("method", ["cell_vertices", "linear_regions", "to_json", "save_cells", "same_map", "halfspace"])
def test_cell_complex_methods(site, method):
    from piecewise.regions.cells import CellComplex

    sig = inspect.signature(getattr(CellComplex, method))
    expected = method + "(" + ",".join(
        p.name + (f":{p.annotation}" if p.annotation is not inspect.Parameter.empty else "")
        + (f"={p.default!r}" if p.default is not inspect.Parameter.empty else "")
        for p in sig.parameters.values() if p.name != "self") + ")"
    if sig.return_annotation is not inspect.Signature.empty:
        expected += "->" + str(sig.return_annotation).replace("np.", "")
    text = object_text(site, "reference/exact/index.html", f"piecewise.regions.cells.CellComplex.{method}")
    assert text.startswith(method) and squeeze(expected) in text[:400], (expected, text[:200])


def test_every_public_module_documented(site):
    """The modules of the one-page summary (docs/generate_api.py's list) each have a section on the site."""
    spec = importlib.util.spec_from_file_location("generate_api", ROOT / "docs" / "generate_api.py")
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    ids = set()
    for page in site.glob("reference/**/*.html"):
        ids |= set(re.findall(r'id="(piecewise[\w.]*)"', page.read_text()))
    missing = [m for m in gen.MODULES if m not in ids]
    assert not missing, missing


def test_result_types_documented(site):
    pages = {"reference/exact/index.html": ["CellComplex", "RegionCount"],
             "reference/domains-grid/index.html": ["GridCount"],
             "reference/search/index.html": ["RegionGraph", "BoxedSpace", "SpaceBox"],
             "reference/invertibility/index.html": ["HomeoResult", "LayerReport", "InjectivityResult"]}
    for rel, classes in pages.items():
        doc = (site / rel).read_text()
        for cls in classes:
            assert re.search(r'id="piecewise\.[\w.]*\.' + cls + '"', doc), (rel, cls)
    search = (site / "reference/search/index.html").read_text()
    for method in ("adjacency", "linear_regions", "to_json", "save_cells"):
        assert f'id="piecewise.regions.search.RegionGraph.{method}"' in search, method


def test_lazy_exports_listed(site):
    text = page_text(site, "reference/index.html")
    for pkg in ("piecewise", "piecewise.regions"):
        init = ROOT.joinpath(*pkg.split("."), "__init__.py")
        tree = ast.parse(init.read_text())
        exports = next(ast.literal_eval(n.value) for n in tree.body if isinstance(n, ast.Assign)
                       and any(getattr(t, "id", None) == "_EXPORTS" for t in n.targets))
        for name in exports:
            assert f"{pkg}.{name}" in text, f"{pkg}.{name}"


def test_notebooks_rendered_with_figures(site):
    notebooks = sorted((ROOT / "notebooks").glob("*.ipynb"))
    assert notebooks
    for nb in notebooks:
        cells = json.loads(nb.read_text())["cells"]
        stored = sum("image/png" in out.get("data", {}) for c in cells if c["cell_type"] == "code"
                     for out in c.get("outputs", []))
        page = (site / "notebooks" / nb.stem / "index.html").read_text()
        assert page.count('src="data:image/png') == stored, nb.name
        first_code = next("".join(c["source"]) for c in cells if c["cell_type"] == "code")
        first_line = next(line for line in first_code.splitlines() if line.strip())
        words = re.findall(r"\w+", first_line)
        assert all(w in page for w in words), (nb.name, first_line)


def test_cli_page_has_every_subcommand(site):
    import argparse

    from piecewise.cli import build_parser

    text = page_text(site, "guides/cli/index.html")
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    assert sub.choices
    for name, parser in sub.choices.items():
        assert f"piecewise {name}" in text, name
        for action in parser._actions:
            for opt in action.option_strings:
                assert opt in text, (name, opt)


def test_role_links_resolve(site):
    """Sphinx roles in docstrings (:func:`...`) become links to the documented object, not literal text."""
    doc = (site / "reference/domains-grid/index.html").read_text()
    assert ":func:" not in doc and ":class:" not in doc
    # count_grid's docstring points at piecewise.regions.box (a lazy export of piecewise.regions.domain.box)
    assert re.search(r'<a [^>]*href="[^"]*#piecewise\.regions\.domain\.box"', doc)

"""MkDocs hooks of the piecewise site (``hooks:`` in mkdocs.yml).

* The notebooks stay where the tests run them (``notebooks/*.ipynb``, stored with their outputs): they are added
  to the site as ``notebooks/NAME.ipynb`` pages, which mkdocs-jupyter renders without executing them.
* ``<!-- cli-help -->`` becomes the ``--help`` of ``piecewise`` and of each of its subcommands, from the parser
  itself (:func:`piecewise.cli.build_parser`, imported from the checkout: it needs NumPy, not JAX).
* ``<!-- exports: PACKAGE -->`` in a page becomes the table of the names that ``PACKAGE`` re-exports lazily (its
  ``_EXPORTS`` and ``_SUBMODULES``), each linked to where it is defined, read from the source (nothing is
  imported), so the table cannot fall behind the code.
"""
from __future__ import annotations

import ast
import pathlib
import re

import mkdocs.plugins
from mkdocs.structure.files import File

ROOT = pathlib.Path(__file__).resolve().parents[2]
NOTEBOOKS = ROOT / "notebooks"
MARKER = re.compile(r"<!--\s*exports:\s*([\w.]+)\s*-->")
CLI = "<!-- cli-help -->"


@mkdocs.plugins.event_priority(100)  # before mkdocs-jupyter picks the notebooks up
def on_files(files, config):
    for path in sorted(NOTEBOOKS.glob("*.ipynb")):
        files.append(File(f"notebooks/{path.name}", str(ROOT), config["site_dir"], config["use_directory_urls"]))
    return files


def _literal(tree, name):
    """The literal value assigned to ``name`` at the top of a module's AST (None if there is none)."""
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == name for t in node.targets):
            return ast.literal_eval(node.value)
    return None


def _summary(path: pathlib.Path, name: str) -> str:
    """The first sentence of the docstring of function or class ``name`` in the file ``path``, as Markdown."""
    tree = ast.parse(path.read_text())
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and node.name == name:
            doc = ast.get_docstring(node) or ""
            first = doc.split("\n\n")[0].replace("\n", " ")
            first = re.split(r"(?<=[a-z0-9)\]`])\.\s+(?=[A-Z`(])", first)[0].rstrip(".") + "."  # one sentence
            return re.sub(r":\w+:`~?\.?([^`]+)`", r"`\1`", first).replace("``", "`").replace("|", "\\|")
    return ""


def _home(module: str, name: str) -> str:
    """The module that defines ``name``, following packages: their lazy ``_EXPORTS`` and their
    ``from .sub import name`` lines."""
    pkg_dir = ROOT.joinpath(*module.split("."))
    while (pkg_dir / "__init__.py").exists():
        tree = ast.parse((pkg_dir / "__init__.py").read_text())
        sub = (_literal(tree, "_EXPORTS") or {}).get(name)
        for node in tree.body:
            if sub is None and isinstance(node, ast.ImportFrom) and node.level == 1:
                if any((a.asname or a.name) == name for a in node.names):
                    sub = "." + (node.module or "")
        if sub is None:
            break
        module = f"{module}{sub}"
        pkg_dir = ROOT.joinpath(*module.split("."))
    return module


def exports_table(package: str) -> str:
    """The Markdown table of ``package``'s lazy re-exports (module docstring)."""
    pkg_dir = ROOT.joinpath(*package.split("."))
    tree = ast.parse((pkg_dir / "__init__.py").read_text())
    exports = _literal(tree, "_EXPORTS") or {}
    rows = ["| name | defined in | summary |", "|---|---|---|"]
    for name, sub in sorted(exports.items(), key=lambda kv: kv[0].lower()):
        home = _home(f"{package}{sub}", name)
        src = ROOT.joinpath(*home.split("."))
        src = src / "__init__.py" if src.is_dir() else src.with_suffix(".py")
        rows.append(f"| [`{package}.{name}`][{home}.{name}] | `{home}` | {_summary(src, name)} |")
    for sub in sorted(_literal(tree, "_SUBMODULES") or ()):
        rows.append(f"| [`{package}.{sub}`][{package}.{sub}] | module | |")
    return "\n".join(rows)


def cli_help() -> str:
    """``piecewise --help`` and every subcommand's ``--help`` (100 columns), as Markdown sections."""
    import argparse
    import os
    import sys

    if str(ROOT) not in sys.path:  # the checkout's piecewise, installed or not
        sys.path.insert(0, str(ROOT))
    from piecewise.cli import build_parser

    old = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = "100"
    try:
        parser = build_parser()
        parts = ["## `piecewise`", "", "```text", parser.format_help().rstrip(), "```", ""]
        subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        for action in subs:
            for name, sub in action.choices.items():
                parts += [f"## `piecewise {name}`", "", "```text", sub.format_help().rstrip(), "```", ""]
    finally:
        if old is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = old
    return "\n".join(parts)


def on_page_markdown(markdown, page, config, files):
    if CLI in markdown:
        markdown = markdown.replace(CLI, cli_help())
    return MARKER.sub(lambda m: exports_table(m.group(1)), markdown)

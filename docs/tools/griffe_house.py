"""A griffe extension that reads piecewise's docstrings as they are written (plain text with the reST habits of
the house) and hands mkdocstrings Markdown, so that the site needs no change to the modules.

What it rewrites, in every docstring of the package, before mkdocstrings parses the Google-style sections:

* Sphinx roles (``:func:`x```, ``:class:`~a.b.C```, ``:mod:`.rational```, ...) become code that links to the
  object where the site documents it (an *optional* cross-reference: a name the site does not document stays
  plain code, with no warning). Relative names (``.rational``) are taken from the docstring's module, other
  names from its scope (its imports, its class), and names re-exported lazily through a package's
  ``_EXPORTS`` table (``piecewise.regions.box``) are followed to the module that defines them;
* a literal block (a paragraph ending in ``::`` and the indented lines after it) becomes a fenced Python block;
* a reST simple table (rows between ``=== ===`` rules) becomes a Markdown table, or a bullet list when it has
  no header row;
* an attribute without a docstring but with a trailing comment (``patterns: np.ndarray  # (C, n_words)``)
  gets the comment as its docstring;
* a Google section (``Args:``, ``Returns:``, ...) gets the blank line above its title and the indentation of
  its continuation lines that the section parser requires (see :func:`_sections`).
"""
from __future__ import annotations

import ast
import html
import io
import re
import tokenize

from griffe import Docstring, Extension

ROLE = re.compile(r":(?:py:)?(func|class|meth|mod|data|attr|obj|exc|const|term):`([^`]+)`")
RULE = re.compile(r"^(\s*)(=+)( +=+)+\s*$")
SECTIONS = ("args", "arguments", "parameters", "params", "returns", "return", "raises", "yields", "attributes",
            "examples", "example", "note", "notes", "warns", "warnings", "keyword args", "other parameters")
SECTION = re.compile(r"^(\s*)(" + "|".join(SECTIONS) + r"):\s*$", re.IGNORECASE)
ITEM = re.compile(r"^\s*\*{0,2}[A-Za-z_][\w.]*(\s*,\s*\*{0,2}[A-Za-z_][\w.]*)*\s*(\([^)]*\))?:(\s|$)")


class HouseDocstrings(Extension):
    """Rewrite the docstrings of every loaded package (see the module docstring)."""

    def on_package(self, *, pkg, **kwargs) -> None:
        _COMMENTS.clear()  # a new load (mkdocs serve rebuilds): the sources may have changed
        exports = {}
        for obj in _walk(pkg):
            if obj.is_module:
                exports.update(_lazy_exports(obj))
        for obj in _walk(pkg):
            if obj.is_attribute and obj.docstring is None:
                _comment_docstring(obj)
            if obj.docstring is not None:
                obj.docstring.value = to_markdown(obj.docstring.value, lambda t, o=obj: _target(o, t, exports, pkg))


_COMMENTS: dict = {}


def _comments(mod) -> dict:
    """``{line number: comment text}`` of a module's trailing comments (``x = 1  # text``)."""
    if mod.path not in _COMMENTS:
        out = {}
        try:
            for tok in tokenize.generate_tokens(io.StringIO("\n".join(mod.lines) + "\n").readline):
                if tok.type == tokenize.COMMENT and tok.line[: tok.start[1]].strip():
                    out[tok.start[0]] = tok.string.lstrip("#").strip()
        except (tokenize.TokenError, SyntaxError):
            pass
        _COMMENTS[mod.path] = out
    return _COMMENTS[mod.path]


def _comment_docstring(attr) -> None:
    """An attribute documented by the comment on its line (``vertices_c: np.ndarray  # (C, K, d) in c``) gets
    that comment as its docstring, so the shapes written there reach the site."""
    try:
        lines = range(attr.lineno, (attr.endlineno or attr.lineno) + 1)
        text = " ".join(c for n in lines if (c := _comments(attr.module).get(n)))
    except Exception:  # an attribute without source lines (inspected, or an odd node)
        return
    if text and not text.lower().startswith(("noqa", "type:", "pragma")):
        parent = attr.module.docstring
        attr.docstring = Docstring(text, lineno=attr.lineno, endlineno=attr.endlineno, parent=attr,
                                   parser=parent.parser if parent else None,
                                   parser_options=parent.parser_options if parent else None)


def _walk(obj):
    yield obj
    for member in list(obj.members.values()):
        if not member.is_alias:
            yield from _walk(member)


def _lazy_exports(mod) -> dict:
    """``{"pkg.name": "pkg.sub.name"}`` from a module's literal ``_EXPORTS = {"name": ".sub", ...}``."""
    attr = mod.members.get("_EXPORTS")
    if attr is None or attr.is_alias or attr.value is None:
        return {}
    try:
        table = ast.literal_eval(str(attr.value))
    except (ValueError, SyntaxError):
        return {}
    base = mod.path if mod.is_init_module else mod.parent.path
    return {f"{mod.path}.{name}": f"{_relative(base, sub)}.{name}" for name, sub in table.items()}


def _relative(base: str, name: str) -> str:
    """``name`` (``.x``, ``..x``) read from package ``base``."""
    dots = len(name) - len(name.lstrip("."))
    parts = base.split(".")
    head = parts[: len(parts) - dots + 1] if dots else []
    return ".".join([*head, name[dots:]]) if dots else name


def _exists(pkg, path: str) -> bool:
    """Whether ``path`` names an object griffe loaded (an alias counts when its target does)."""
    parts = path.split(".")
    if parts[0] != pkg.name:
        return False
    obj = pkg
    for part in parts[1:]:
        try:
            obj = obj.members[part]
            if obj.is_alias:
                obj = obj.final_target
        except Exception:  # a missing member, or an alias griffe cannot follow
            return False
    return True


def _target(obj, name: str, exports: dict, pkg=None) -> str:
    """The full path that ``name`` (as written in ``obj``'s docstring) most likely means."""
    if name.startswith("."):
        mod = obj.module
        path = _relative(mod.path if mod.is_init_module else mod.parent.path, name)
    elif name.split(".")[0] == obj.package.name:
        path = name
    else:
        head, _, rest = name.partition(".")
        try:
            path = obj.resolve(head) + (f".{rest}" if rest else "")
        except Exception:  # griffe's NameResolutionError or an alias it cannot follow: keep the name
            path = name
    for _ in range(3):  # follow lazy re-exports (piecewise.box -> piecewise.regions.box -> ...domain.box)
        if pkg is not None and _exists(pkg, path):
            break
        for key, value in exports.items():
            if path == key or path.startswith(key + "."):
                path = value + path[len(key):]
                break
        else:
            break
    return path


def _role(match, target) -> str:
    text = match.group(2).strip()
    if "<" in text and text.endswith(">"):  # :func:`title <target>`
        title, _, name = text[:-1].rpartition("<")
        title, name = title.strip(), name.strip()
    else:
        name = text.lstrip("~")
        title = name.rsplit(".", 1)[-1] if text.startswith("~") else name.lstrip(".")
    name = name.rstrip("()")
    return (f'<autoref identifier="{html.escape(target(name), quote=True)}" optional>'
            f"<code>{html.escape(title)}</code></autoref>")


def to_markdown(text: str, target=lambda name: name) -> str:
    """The Markdown of one docstring (module docstring); ``target(name)`` gives a role's full path."""
    lines = text.splitlines()
    lines = _tables(lines)
    lines = _literal_blocks(lines)
    lines = _sections(lines)
    out = "\n".join(lines)
    return _subst_outside_fences(out, lambda s: ROLE.sub(lambda m: _role(m, target), s))


def _subst_outside_fences(text: str, fn) -> str:
    parts = re.split(r"(^\s*```.*?^\s*```\s*$)", text, flags=re.M | re.S)
    return "".join(p if i % 2 else fn(p) for i, p in enumerate(parts))


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _literal_blocks(lines: list) -> list:
    out, i = [], 0
    while i < len(lines):
        line = lines[i]
        stripped = line.rstrip()
        if stripped.endswith("::") and not stripped.lstrip().startswith(("```", ">>>")):
            base = _indent(line)
            j = i + 1
            while j < len(lines) and not lines[j].strip():
                j += 1
            block = []
            while j < len(lines) and (not lines[j].strip() or _indent(lines[j]) > base):
                block.append(lines[j])
                j += 1
            while block and not block[-1].strip():
                block.pop()
                j -= 1
            if block:
                head = stripped[:-2].rstrip()
                if head.strip():
                    out.append(head + ":")
                    out.append("")
                inner = min(_indent(b) for b in block if b.strip())
                pad = " " * base
                lang = "json" if block[0].strip().startswith(("{", "[")) else "python"
                out.append(f"{pad}```{lang}")
                out += [pad + b[inner:] if b.strip() else "" for b in block]
                out.append(f"{pad}```")
                i = j
                continue
        out.append(line)
        i += 1
    return out


def _columns(rule: str) -> list:
    return [(m.start(), m.end()) for m in re.finditer(r"=+", rule)]


def _cells(line: str, cols: list) -> list:
    cells = []
    for k, (a, _) in enumerate(cols):
        b = cols[k + 1][0] if k + 1 < len(cols) else len(line)
        cells.append(line[a:b].strip())
    return cells


def _tables(lines: list) -> list:
    out, i = [], 0
    while i < len(lines):
        m = RULE.match(lines[i])
        if not m:
            out.append(lines[i])
            i += 1
            continue
        rules = [i]
        j = i + 1
        while j < len(lines) and lines[j].strip() and len(rules) < 3:
            if RULE.match(lines[j]):
                rules.append(j)
            j += 1
        if len(rules) < 2:
            out.append(lines[i])
            i += 1
            continue
        cols = _columns(lines[i])
        pad = m.group(1)
        end = rules[-1]
        header = None
        if len(rules) == 3:
            header = [" ".join(c) for c in zip(*[_cells(x, cols) for x in lines[rules[0] + 1:rules[1]]])]
            body_lines = lines[rules[1] + 1:rules[2]]
        else:
            body_lines = lines[rules[0] + 1:rules[1]]
        rows = []
        for line in body_lines:
            cells = _cells(line, cols)
            if rows and not cells[0]:
                rows[-1] = [f"{a} {b}".strip() for a, b in zip(rows[-1], cells)]
            else:
                rows.append(cells)
        if out and out[-1].strip():
            out.append("")
        if header is not None:
            esc = lambda c: c.replace("|", "\\|")  # noqa: E731
            out.append(pad + "| " + " | ".join(esc(c) for c in header) + " |")
            out.append(pad + "|" + "|".join("---" for _ in header) + "|")
            out += [pad + "| " + " | ".join(esc(c) for c in r) + " |" for r in rows]
        else:
            out += [pad + f"* **{r[0]}**: " + " ".join(r[1:]) for r in rows]
        out.append("")
        i = end + 1
    return out


def _sections(lines: list) -> list:
    """Google sections as the parser needs them: a blank line above each title, and every line of an entry
    after its first indented twice the entry's indent (a line at the entry indent that does not start with
    ``name:`` continues the entry above it)."""
    out, k = [], 0
    while k < len(lines):
        line = lines[k]
        nxt = lines[k + 1] if k + 1 < len(lines) else ""
        m = SECTION.match(line)
        if not (m and nxt.strip() and _indent(nxt) > _indent(line)):
            out.append(line)
            k += 1
            continue
        if out and out[-1].strip():
            out.append("")
        out.append(line)
        base, item, k = _indent(line), _indent(nxt), k + 1
        first = True
        while k < len(lines) and (not lines[k].strip() or _indent(lines[k]) > base):
            body = lines[k]
            if body.strip() and _indent(body) == item and not first and not ITEM.match(body):
                body = " " * item + body  # a continuation written at the entry's indent
            elif body.strip() and item < _indent(body) < 2 * item:
                body = " " * (2 * item) + body.lstrip()
            out.append(body)
            first = False
            k += 1
    return out

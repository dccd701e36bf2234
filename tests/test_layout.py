"""The house: the modules of piecewise.regions import each other in layers (no circle, also through imports
inside functions), and the constants C and Python share are written once (piecewise/_shared.py)."""
import ast
import pathlib
import re

import piecewise
from piecewise import _shared

ROOT = pathlib.Path(piecewise.__file__).parent


def _modules():
    out = {}
    for p in ROOT.rglob("*.py"):
        parts = ("piecewise",) + p.relative_to(ROOT).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = p
    return out


def _imports(mods):
    """module -> the piecewise modules it imports anywhere in its body (package __init__ files left out: they
    only export names lazily)."""
    graph = {}
    for name, path in mods.items():
        pkg = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        deps = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                base = pkg.split(".")[: len(pkg.split(".")) - node.level + 1] if node.level else []
                target = ".".join(base + ([node.module] if node.module else [])) if node.level else node.module
                cands = [target] + [f"{target}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                cands = [a.name for a in node.names]
            else:
                continue
            deps.update(c for c in cands if c in mods and c != name and mods[c].name != "__init__.py")
        graph[name] = deps
    return graph


def _cycle(graph, within):
    """One import circle among the modules whose names start with ``within`` (a list of names), or None."""
    nodes = [m for m in graph if m.startswith(within)]
    state, stack = {}, []

    def visit(v):
        state[v] = 1
        stack.append(v)
        for w in sorted(graph[v]):
            if not w.startswith(within):
                continue
            if state.get(w) == 1:
                return stack[stack.index(w):] + [w]
            if w not in state:
                found = visit(w)
                if found:
                    return found
        state[v] = 2
        stack.pop()
        return None

    for v in sorted(nodes):
        if v not in state:
            found = visit(v)
            if found:
                return found
    return None


def test_the_region_modules_import_each_other_without_a_circle():
    graph = _imports(_modules())
    cyc = _cycle(graph, "piecewise.regions")
    assert cyc is None, " -> ".join(cyc)
    # the layers named in regions/exact.py's docstring: the geometry backends and the complex sit below the
    # driver and the operator engine, never above
    low = ["piecewise.regions.polygons", "piecewise.regions.polytopes", "piecewise.regions.cells",
           "piecewise.regions.pieces", "piecewise.regions.buffers", "piecewise.regions.stagemaps"]
    high = {"piecewise.regions.exact", "piecewise.regions.vertex", "piecewise.regions.graph_engine",
            "piecewise.regions.search"}
    for m in low:
        assert not (graph[m] & high), (m, graph[m] & high)


def test_the_package_imports_itself_without_a_circle():
    """Beyond piecewise.regions: no module of the package reaches itself through imports, at the top or inside
    functions (nets and validate once imported each other inside functions)."""
    cyc = _cycle(_imports(_modules()), "piecewise")
    assert cyc is None, " -> ".join(cyc)


def test_the_cycle_finder_finds_a_planted_circle():
    graph = {"piecewise.regions.a": {"piecewise.regions.b"}, "piecewise.regions.b": {"piecewise.regions.c"},
             "piecewise.regions.c": {"piecewise.regions.a"}, "piecewise.regions.d": set()}
    assert _cycle(graph, "piecewise.regions") == ["piecewise.regions.a", "piecewise.regions.b",
                                                  "piecewise.regions.c", "piecewise.regions.a"]


def test_shared_constants_are_written_once():
    kernel = (ROOT / "regions" / "_kernel.c").read_text()
    for name in _shared.C_MACROS:
        assert f"PW_{name}" in kernel, name
    # the C file defines none of them by value, only from the PW_ macros setup.py passes
    for name in ("NEWBASE", "UROUND", "SAFETY", "NOLAB", "F"):
        m = re.search(rf"^#define {name} (.*)$", kernel, re.M)
        assert m and m.group(1).strip().startswith("PW_"), (name, m and m.group(1))
    # no Python module of the package writes their values again
    pats = [r"-\s*\(\s*2\s*\*\*\s*30\s*\)", r"1\s*<<\s*30", r"2\.0\s*\*\*\s*-53"]
    for p in ROOT.rglob("*.py"):
        if p.name == "_shared.py":
            continue
        text = p.read_text()
        for pat in pats:
            assert not re.search(pat, text), (p.name, pat)
    from piecewise import numerics
    from piecewise.regions import _ckernel, polygons, polytopes

    assert numerics.U == _shared.U and numerics.SAFETY == _shared.SAFETY
    assert polygons.NOLAB == polytopes.NOLAB == _shared.NOLAB and _ckernel.NEWBASE == _shared.NEWBASE
    assert polytopes.F == _ckernel.F == _shared.F


def test_setup_passes_the_shared_constants_to_the_compiler():
    src = (ROOT.parent / "setup.py").read_text()
    tree = ast.parse(src)
    fn = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "shared_macros")
    ns = {"os": __import__("os"), "__file__": str(ROOT.parent / "setup.py")}
    exec(compile(ast.Module(body=[fn], type_ignores=[]), "setup.py", "exec"), ns)
    macros = dict(ns["shared_macros"]())
    assert set(macros) == {f"PW_{n}" for n in _shared.C_MACROS}
    for n in _shared.C_MACROS:
        v = getattr(_shared, n)
        got = float.fromhex(macros[f"PW_{n}"]) if isinstance(v, float) else int(macros[f"PW_{n}"].strip("()"))
        assert got == v, n

"""The README's Python example runs as written."""
import pathlib
import re

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"


def test_readme_python_example_runs(tmp_path, monkeypatch, capsys):
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    assert blocks, "README has no python example"
    monkeypatch.chdir(tmp_path)
    for block in blocks:
        exec(compile(block, "README.md", "exec"), {})
    out = capsys.readouterr().out
    assert "activation regions" in out and "proven on the box" in out
    assert (tmp_path / "cells.png").exists() and (tmp_path / "net.npz").exists()


def test_quickstart_has_two_commands():
    text = README.read_text()
    qs = text.split("## Quickstart", 1)[1]
    block = re.findall(r"```bash\n(.*?)```", qs, re.S)[0]
    lines = [ln for ln in block.strip().splitlines() if ln.strip()]
    assert len(lines) == 2 and "piecewise demo" in lines[0] and "pytest" in lines[1]


def test_one_version_everywhere():
    """pyproject.toml, piecewise.__version__ and the README's status line give the same version."""
    import re
    import tomllib
    from pathlib import Path

    import piecewise as pw

    root = Path(__file__).resolve().parents[1]
    declared = tomllib.loads((root / "pyproject.toml").read_text())["project"]["version"]
    assert pw.__version__ == declared
    status = re.search(r"^Status \((\d+\.\d+)\)", (root / "README.md").read_text(), re.M)
    assert status and declared.startswith(status.group(1) + ".")

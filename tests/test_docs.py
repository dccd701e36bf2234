"""docs/api.md is generated from the docstrings and must match the code."""
import importlib.util
import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_api_reference_is_current():
    spec = importlib.util.spec_from_file_location("generate_api", ROOT / "docs" / "generate_api.py")
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    text = gen.render()
    assert (ROOT / "docs" / "api.md").read_text() == text, "run: python docs/generate_api.py"
    for name in ("enumerate_cells", "count_grid", "homeomorphism", "load_onnx", "tiled_count", "run_study"):
        assert f"`{name}(" in text, name  # the public entry points are documented


def test_docs_cite_nothing_outside_the_repository():
    for path in [*ROOT.glob("piecewise/**/*.py"), *ROOT.glob("experiments/*.py"), ROOT / "README.md"]:
        assert "shared/" not in path.read_text(), path

"""The notebooks run from top to bottom (executed with nbclient) and produce their figures; the studies they
run (quick settings) are checked on the results they write (tests/study_checks.py), so that each study runs
once in the test suite."""
import json
import pathlib

import pytest

from study_checks import CHECKS, NOTEBOOK_DIRS

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

NOTEBOOKS = sorted((pathlib.Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_executes(path, tmp_path, monkeypatch):
    out = tmp_path / "results"
    out.mkdir()
    monkeypatch.setenv("PIECEWISE_NOTEBOOK_OUT", str(out))  # the kernel inherits it (notebooks 03, 04 write there)
    nb = nbformat.read(path, as_version=4)
    nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}}).execute()
    images = sum("image/png" in out.get("data", {}) for c in nb.cells if c.cell_type == "code" for out in c.outputs)
    assert images >= 2
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors
    source = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    ran = [(folder, study) for folder, study in NOTEBOOK_DIRS.items() if f'run_study("{study}"' in source]
    for folder, study in ran:
        on_disk = json.loads((out / folder / f"{study}.json").read_text())
        assert on_disk["study"] == study
        CHECKS[study](on_disk)
    if "run_study(" in source:
        assert ran, "a notebook runs a study that tests/study_checks.py does not check"


def test_every_study_the_notebooks_skip_is_checked_by_test_studies():
    """No study escapes: each is run by a notebook (checked here) or by tests/test_studies.py."""
    from piecewise.studies import STUDIES

    text = (pathlib.Path(__file__).parent / "test_studies.py").read_text()
    in_notebooks = "\n".join(p.read_text() for p in NOTEBOOKS)
    for name in STUDIES:
        assert f'run_study(\\"{name}\\"' in in_notebooks or f'_run("{name}"' in text, name

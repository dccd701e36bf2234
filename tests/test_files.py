"""Atomic result files (piecewise.files): the mode a plain open() gives, the folder check."""
import os
import stat

import pytest

import piecewise as pw
from piecewise.files import atomic_open, make_folder, write_json


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture(params=[0o022, 0o077, 0o002], ids=["umask022", "umask077", "umask002"])
def umask(request):
    old = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(old)


def test_new_files_get_the_mode_of_a_plain_open(tmp_path, umask):
    """Before issue #18 every file was 0600 (mkstemp), unreadable to collaborators and CI."""
    with open(tmp_path / "plain.txt", "w") as f:
        f.write("x")
    write_json(tmp_path / "a.json", {"a": 1})
    with atomic_open(tmp_path / "b.png", "wb") as f:
        f.write(b"\x89PNG")
    assert mode(tmp_path / "plain.txt") == 0o666 & ~umask
    assert mode(tmp_path / "a.json") == mode(tmp_path / "b.png") == 0o666 & ~umask
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json", "b.png", "plain.txt"]


def test_a_replaced_file_keeps_its_mode(tmp_path, umask):
    path = tmp_path / "summary.json"
    write_json(path, {"v": 1})
    os.chmod(path, 0o640)
    write_json(path, {"v": 2})
    assert mode(path) == 0o640 and '"v": 2' in path.read_text()


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "r.json"
    write_json(path, {"v": 1})
    with pytest.raises(RuntimeError):
        with atomic_open(path) as f:
            f.write("half")
            raise RuntimeError("killed")
    assert '"v": 1' in path.read_text() and [p.name for p in tmp_path.iterdir()] == ["r.json"]


def test_make_folder(tmp_path):
    assert make_folder(tmp_path / "a" / "b") == str(tmp_path / "a" / "b") and (tmp_path / "a" / "b").is_dir()
    assert list((tmp_path / "a" / "b").iterdir()) == []  # the write test leaves nothing behind
    (tmp_path / "f").write_text("")
    with pytest.raises(pw.PiecewiseError, match="is a file, not a folder"):
        make_folder(tmp_path / "f")
    with pytest.raises(pw.PiecewiseError, match="cannot create the results folder .*: Not a directory"):
        make_folder(tmp_path / "f" / "g", "results folder")

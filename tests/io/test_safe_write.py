"""Outputs that cannot hurt (layerseg.io.safe_write)."""

import os

import pytest

from layerseg.errors import OutputError
from layerseg.io.safe_write import (atomic_write, check_outputs, check_writable,
                                    write_text_atomic)


def unwritable_folder(tmp_path):
    """A folder no file can be written in, as root too: below a regular file, and (for a
    non-root user) a folder without write permission."""
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    folders = [blocker / "sub"]
    if os.geteuid() != 0:
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o500)
        folders.append(ro)
    return folders


def test_output_naming_an_input_is_refused(tmp_path):
    inp = tmp_path / "in" / "manifest.csv"
    inp.parent.mkdir()
    inp.write_text("id\n")
    with pytest.raises(OutputError, match="is an input"):
        check_outputs([tmp_path / "in" / ".." / "in" / "manifest.csv"], [inp])
    link = tmp_path / "link.csv"
    link.symlink_to(inp)
    with pytest.raises(OutputError, match="is an input"):
        check_outputs([link], [inp])
    with pytest.raises(OutputError, match="is an input"):   # a folder input: all its files
        check_outputs([inp], [tmp_path / "in"])
    assert inp.read_text() == "id\n"


def test_two_outputs_the_same_file_or_a_folder(tmp_path):
    with pytest.raises(OutputError, match="same file"):
        check_outputs([tmp_path / "a.csv", tmp_path / "x" / ".." / "a.csv"])
    with pytest.raises(OutputError, match="existing folder"):
        check_outputs([tmp_path])
    assert check_outputs([tmp_path / "a.csv", None, tmp_path / "b.csv"]) == [
        tmp_path / "a.csv", tmp_path / "b.csv"]


def test_unwritable_folder_is_refused_before_work(tmp_path):
    for folder in unwritable_folder(tmp_path):
        with pytest.raises(OutputError, match="cannot write"):
            check_writable(folder)
        with pytest.raises(OutputError, match="cannot write"):
            check_outputs([folder / "out.csv"])
    assert check_writable(tmp_path / "new" / "deep").is_dir()
    assert list((tmp_path / "new" / "deep").iterdir()) == []   # the test write is cleaned up


def test_atomic_write_keeps_the_old_file_on_failure(tmp_path):
    p = tmp_path / "t.csv"
    write_text_atomic(p, "old\n")
    with pytest.raises(RuntimeError):
        with atomic_write(p) as f:
            f.write("half a tab")
            raise RuntimeError("killed mid-write")
    assert p.read_text() == "old\n"
    assert sorted(x.name for x in tmp_path.iterdir()) == ["t.csv"]   # no temporary left
    write_text_atomic(p, "new\n")
    assert p.read_text() == "new\n"
    assert oct(p.stat().st_mode & 0o777) == oct(0o666 & ~_umask())


def _umask():
    m = os.umask(0)
    os.umask(m)
    return m


def test_dataset_inputs_read_from_a_utf16_manifest(tmp_path):
    """The manifest is parsed as the run parses it (encoding from its BOM), so the files of a
    UTF-16 manifest are protected too."""
    from layerseg.io.safe_write import dataset_input_files
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "a.png").write_bytes(b"x")
    (tmp_path / "manifest.csv").write_bytes("id,image\na,images/a.png\n".encode("utf-16"))
    files = {p.name for p in dataset_input_files(tmp_path)}
    assert files == {"manifest.csv", "a.png"}
    with pytest.raises(OutputError, match="is an input"):
        check_outputs([tmp_path / "images" / "a.png"], dataset_input_files(tmp_path))

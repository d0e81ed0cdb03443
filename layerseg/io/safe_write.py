"""Outputs that cannot hurt: refused before any work when they would overwrite an input or each
other, or when their folder cannot be written; written atomically (a temporary file in the same
folder, then one rename), so an interrupted run never leaves a half-written file and a failed
write never destroys what was there."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from ..errors import OutputError

__all__ = ["check_outputs", "check_writable", "atomic_write", "write_text_atomic",
           "dataset_input_files"]


def _key(p: Path) -> Path:
    return Path(os.path.realpath(p))


def check_outputs(outputs: Iterable[str | os.PathLike | None],
                  inputs: Iterable[str | os.PathLike] = ()) -> list[Path]:
    """Refuse outputs that resolve to an input file or to each other; check their folders.

    Parameters
    ----------
    outputs : iterable of path or None
        The files a run will write (None entries are skipped).
    inputs : iterable of path
        The files (or folders, whose every file counts) the run reads.

    Returns
    -------
    list of Path
        The outputs, in order, None entries dropped.

    Raises
    ------
    OutputError
        An output is an input (after resolving links and ``..``), two outputs are the same file,
        an output is an existing folder, or an output's folder cannot be created or written.
    """
    outs = [Path(o) for o in outputs if o is not None]
    in_keys: dict[Path, Path] = {}
    for i in inputs:
        ip = Path(i)
        if ip.is_dir():
            for f in ip.rglob("*"):
                if f.is_file():
                    in_keys[_key(f)] = f
        else:
            in_keys[_key(ip)] = ip
    seen: dict[Path, Path] = {}
    for o in outs:
        k = _key(o)
        if k in in_keys:
            raise OutputError(f"this output is an input of the run ({in_keys[k]}); writing it "
                              "would destroy the input. Choose another output path", o)
        if k in seen:
            raise OutputError(f"two outputs of the run are the same file ({seen[k]} and {o})", o)
        if o.is_dir():
            raise OutputError("this output is an existing folder; give a file name", o)
        seen[k] = o
    for folder in dict.fromkeys(o.parent for o in outs):
        check_writable(folder)
    return outs


def check_writable(folder: str | os.PathLike) -> Path:
    """Create `folder` if needed and check a file can be written in it (a real test write).

    Raises
    ------
    OutputError
        The folder cannot be created or written (read-only, no permission, a file in the way).
    """
    d = Path(folder) if str(folder) else Path(".")
    try:
        d.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=d, prefix=".layerseg-write-test-"):
            pass
    except OSError as e:
        raise OutputError(f"cannot write in this folder ({e.strerror or e})", d) from e
    return d


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "w", **open_kw) -> Iterator:
    """Open a temporary file beside `path`; on success it replaces `path` in one rename.

    On an exception (or an interrupt) the temporary file is removed and `path` is untouched.

    Parameters
    ----------
    path : path
        The final file.
    mode : {'w', 'wb'}
        Text or binary.
    **open_kw
        Passed to `open` (``newline``, ``encoding``).
    """
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=p.parent, prefix=f".{p.name}.", suffix=".part")
    try:
        with os.fdopen(fd, mode, **open_kw) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, p)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    """Write `text` (UTF-8) to `path` atomically; returns the path."""
    with atomic_write(path, "w", encoding="utf-8", newline="") as f:
        f.write(text)
    return Path(path)


def dataset_input_files(root: str | os.PathLike) -> list[Path]:
    """The files a dataset folder's run reads: ``manifest.csv`` and every file it names
    (image, label, elastography, truth), the manifest parsed by `layerseg.io.read_dataset` (its
    encoding detected as for the run itself). Files that do not exist are left out; a manifest
    that cannot be parsed protects itself only (the run then reports it)."""
    from ..errors import DatasetError
    from .dataset import read_dataset
    r = Path(root)
    out = [r / "manifest.csv"]
    try:
        rows = read_dataset(r, validate=False).rows
    except DatasetError:
        rows = []
    for row in rows:
        for c in ("image", "label", "elasto", "truth"):
            if row.get(c):
                out.append(r / row[c])
    return [p for p in out if p.exists()]


def _umask() -> int:
    m = os.umask(0)
    os.umask(m)
    return m

"""The dataset layout on disk (DESIGN.md): a folder with ``manifest.csv`` (one row per frame, paths
relative to the folder), images, optional label maps, elastography maps and truth JSON files.

`DatasetWriter` writes it (the simulator uses it; so can anyone converting their own data);
`read_dataset` validates a folder (missing files, shape mismatches, labels outside 0-7, missing
spacing) before anything runs on it and yields `DatasetItem` objects.

Files written::

    manifest.csv
    images/<id>.png    8-bit grey (display images)   or images/<id>.npy float32 (envelope / exact)
    labels/<id>.png    uint8 label map 0-7
    elasto/<id>.npy    float32, NaN where invalid
    truth/<id>.json    anything the producer knows exactly (the simulator's ground truth)
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import math
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..checks import LabelMapError, check_label_map
from ..errors import DatasetError, LayersegError
from ..frame import Frame, FrameMeta
from ._grey import pixels_to_grey

__all__ = ["DatasetWriter", "Dataset", "DatasetItem", "read_dataset", "read_manifest_text",
           "write_manifest",
           "write_frame_files", "MANIFEST_COLUMNS", "load_array", "load_image"]

MANIFEST_COLUMNS = ("id", "subject_id", "image", "label", "elasto", "elasto_kind",
                    "spacing_axial_mm", "spacing_lateral_mm", "split", "region", "side", "age",
                    "sex", "device", "frequency_mhz", "intensity", "dynamic_range_db", "truth")
"""Known manifest columns, in the order the writer puts them. Other columns are kept as given."""

_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")
_NIFTI = (".nii", ".nii.gz")


def _safe_id(frame_id: str) -> str:
    s = str(frame_id)
    if not _ID_RE.match(s) or ".." in s:
        raise DatasetError(f"frame id {s!r} is not a safe file name (letters, digits, '_', '-', '.')")
    return s


def _fmt(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return "" if math.isnan(v) else repr(v)
    return str(v)


def write_frame_files(root: str | os.PathLike, frame: Frame, frame_id: str, *,
                      label: np.ndarray | None = None, truth: dict | None = None,
                      image_format: str | None = None, overwrite: bool = False
                      ) -> dict[str, Any]:
    """Write one frame's files under `root` and return its manifest row (paths relative).

    Safe to call from parallel workers (each frame writes only its own files); gather the rows and
    call `write_manifest` once.

    Parameters
    ----------
    root : path
        Dataset folder (created if needed).
    frame : Frame
        Its B-mode, spacing, elastography and metadata are written.
    frame_id : str
        Unique key (a safe file name; no patient identifiers).
    label : ndarray of int, shape (rows, cols), optional
        Label map 0-7.
    truth : dict, optional
        JSON-serialisable ground truth.
    image_format : {'png', 'npy'}, optional
        Default: 8-bit PNG for display images, float32 .npy for envelope images.
    overwrite : bool
        Refuse (default) to replace an existing file.
    """
    root = Path(root)
    fid = _safe_id(frame_id)
    fmt = image_format or ("png" if frame.intensity == "display" else "npy")
    if fmt not in ("png", "npy"):
        raise DatasetError(f"image_format must be 'png' or 'npy', got {fmt!r}")
    if fmt == "png" and frame.intensity != "display":
        raise DatasetError("an envelope image cannot be stored as 8-bit PNG; use image_format='npy'")
    row: dict[str, Any] = {"id": fid}
    paths: dict[str, Path] = {"image": root / "images" / f"{fid}.{fmt}"}
    if label is not None:
        try:
            label = check_label_map(label, frame.shape, dtype=np.uint8)
        except LabelMapError as e:
            raise DatasetError(e.problem, paths["image"]) from None
        paths["label"] = root / "labels" / f"{fid}.png"
    if frame.elasto is not None:
        paths["elasto"] = root / "elasto" / f"{fid}.npy"
    if truth is not None:
        paths["truth"] = root / "truth" / f"{fid}.json"
    if not overwrite:
        for p in paths.values():
            if p.exists():
                raise DatasetError("file exists; refusing to overwrite (pass overwrite=True)", p)
    for p in paths.values():
        p.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "png":
        _write_png(paths["image"], np.clip(np.rint(frame.bmode), 0, 255).astype(np.uint8))
    else:
        np.save(paths["image"], frame.bmode.astype(np.float32))
    if label is not None:
        _write_png(paths["label"], label.astype(np.uint8))
    if frame.elasto is not None:
        np.save(paths["elasto"], frame.elasto.astype(np.float32))
        row["elasto_kind"] = frame.elasto_kind
    if truth is not None:
        with open(paths["truth"], "w") as f:
            json.dump(truth, f, indent=1, sort_keys=True, default=_json_default)
    for k, p in paths.items():
        row[k] = p.relative_to(root).as_posix()
    if frame.spacing_mm is not None:
        row["spacing_axial_mm"], row["spacing_lateral_mm"] = frame.spacing_mm
    m = frame.meta
    row.update({"region": m.region, "device": m.device, "frequency_mhz": m.frequency_mhz,
                "intensity": frame.intensity, "dynamic_range_db": frame.dynamic_range_db,
                "subject_id": m.subject_key})
    return row


def _json_default(o):
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"{type(o).__name__} is not JSON-serialisable")


def _write_png(path: Path, arr: np.ndarray) -> None:
    from PIL import Image
    Image.fromarray(arr).save(path, format="PNG")


def write_manifest(root: str | os.PathLike, rows: list[dict[str, Any]], *,
                   overwrite: bool = False) -> Path:
    """Write ``manifest.csv`` for `rows` (known columns first, then any others, in first-seen order).

    Refuses an existing manifest unless `overwrite`; ids must be unique.
    """
    root = Path(root)
    path = root / "manifest.csv"
    if path.exists() and not overwrite:
        raise DatasetError("manifest exists; refusing to overwrite (pass overwrite=True)", path)
    ids = [r["id"] for r in rows]
    dup = sorted({i for i in ids if ids.count(i) > 1})
    if dup:
        raise DatasetError(f"duplicate frame ids: {dup[:5]}", path)
    present = {k for r in rows for k, v in r.items() if v is not None and v != ""}
    cols = [c for c in MANIFEST_COLUMNS if c in present or c in ("id", "subject_id", "image")]
    for r in rows:
        for k in r:
            if k not in cols and k in present:
                cols.append(k)
    root.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".csv.tmp")
    with open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=cols, extrasaction="ignore")
        w.writeheader()
        for r in rows:
            w.writerow({k: _fmt(r.get(k)) for k in cols})
    os.replace(tmp, path)
    return path


class DatasetWriter:
    """Write frames into a dataset folder, one `add` per frame, then `close` (or use ``with``).

    Parameters
    ----------
    root : path
        Dataset folder; must not already hold a manifest unless `overwrite`.
    image_format : {'png', 'npy'}, optional
        See `write_frame_files`.
    overwrite : bool
        Allow replacing existing files (default: refuse, so nothing is ever lost).

    Examples
    --------
    >>> with DatasetWriter("my_dataset") as w:                     # doctest: +SKIP
    ...     w.add(frame, "f0001", subject_id="s01", label=labels, split="train")
    """

    def __init__(self, root: str | os.PathLike, image_format: str | None = None,
                 overwrite: bool = False):
        self.root = Path(root)
        self.image_format = image_format
        self.overwrite = overwrite
        if (self.root / "manifest.csv").exists() and not overwrite:
            raise DatasetError("a dataset already exists here; refusing to overwrite it "
                               "(choose another folder or pass overwrite=True)", self.root)
        self.rows: list[dict[str, Any]] = []

    def add(self, frame: Frame, frame_id: str, *, subject_id: str | None = None,
            label: np.ndarray | None = None, truth: dict | None = None,
            split: str | None = None, **columns: Any) -> dict[str, Any]:
        """Write one frame's files; extra keyword arguments become manifest columns
        (``age=``, ``sex=``, ``side=``...). Returns the manifest row."""
        if any(r["id"] == frame_id for r in self.rows):
            raise DatasetError(f"duplicate frame id {frame_id!r}", self.root)
        row = write_frame_files(self.root, frame, frame_id, label=label, truth=truth,
                                image_format=self.image_format, overwrite=self.overwrite)
        if subject_id is not None:
            row["subject_id"] = subject_id
        row["split"] = split
        row.update(columns)
        self.rows.append(row)
        return row

    def close(self) -> Path:
        """Write ``manifest.csv``; returns its path."""
        return write_manifest(self.root, self.rows, overwrite=self.overwrite)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.close()
        elif self.rows:
            write_manifest(self.root, self.rows, overwrite=True)  # keep what was written


# ---------------------------------------------------------------------------------- reading
def load_array(path: str | os.PathLike) -> tuple[np.ndarray, tuple[float, float] | None]:
    """Load a 2-D array file of the dataset layout as stored: PNG/TIFF, .npy, NIfTI.

    The values are not converted: use it for label maps (class indices) and elastography maps;
    B-mode images go through `load_image`, which puts them on the frame's grey scale.

    Returns ``(array, spacing_mm or None)``; spacing only from a NIfTI header, as
    ``(axial, lateral)`` = (header axis 1, axis 0) since NIfTI stores (x=lateral, y=depth).
    """
    p = Path(path)
    name = p.name.lower()
    if not p.is_file():
        raise DatasetError("file is missing", p)
    try:
        if name.endswith(".npy"):
            from .rf import check_npy_header

            check_npy_header(p)  # sizes checked before anything is allocated
            return np.load(p, allow_pickle=False), None
        if name.endswith(_NIFTI):
            import nibabel as nib

            from .volumes import check_nifti_size
            img = nib.load(str(p))
            check_nifti_size(img, p)
            a = np.asarray(img.dataobj)
            zooms = img.header.get_zooms()
            a = np.squeeze(a)
            if a.ndim != 2:
                raise DatasetError(f"NIfTI image must hold one 2-D frame, got shape {a.shape}", p)
            # NIfTI axis 0 = x (lateral), axis 1 = y (depth): transpose to (rows, cols)
            return a.T, (float(zooms[1]), float(zooms[0]))
        from .images import _open
        with _open(p) as im:  # checks the claimed size, refuses decompression bombs
            if im.mode not in ("L", "I;16", "I;16B", "I;16L", "I", "F", "P", "1"):
                raise DatasetError(f"image must be grey (8/16-bit), got PIL mode {im.mode}", p)
            return np.array(im), None
    except LayersegError:
        raise
    except FileNotFoundError:
        raise DatasetError("file is missing", p) from None
    except Exception as e:  # noqa: BLE001 - any decoder failure becomes a named error
        raise DatasetError(f"cannot be read as an image ({type(e).__name__}: {e})", p) from e


def load_image(path: str | os.PathLike, intensity: str = "display"
               ) -> tuple[np.ndarray, tuple[float, float] | None]:
    """Load a dataset B-mode image on the frame's grey scale, as `layerseg.io.read` would.

    The pixel values go through `layerseg.io._grey`, the one owner of grey conversion: a PNG/TIFF
    is decoded and converted exactly as `layerseg.io.images.read_image` converts it (16-bit
    scaled from 0-65535 onto 0-255, effectively grey colour read as grey), a NIfTI or ``.npy``
    array is taken as it is (as `layerseg.io.volumes.read_volume` takes NIfTI values), then
    checked against `intensity`. Label maps never come through here (their values are classes,
    see `load_array`).

    Parameters
    ----------
    path : str or path-like
        PNG/TIFF (8/16-bit grey, float TIFF), ``.npy`` or NIfTI (one 2-D frame).
    intensity : {'display', 'envelope'}
        The manifest's ``intensity``: grey 0-255, or a linear envelope >= 0.

    Returns
    -------
    (ndarray, spacing)
        float32 image, shape (rows, cols); spacing ``(axial_mm, lateral_mm)`` from a NIfTI
        header, else None.

    Raises
    ------
    LayersegError
        `DatasetError` for a missing or undecodable file or a non-2-D array; the image readers'
        errors (`InvalidImageError` for colour, NaN or out-of-range values...).
    """
    p = Path(path)
    name = p.name.lower()
    if name.endswith(".npy") or name.endswith(_NIFTI):
        a, spacing = load_array(p)
        if a.ndim != 2:
            raise DatasetError(f"image must be a 2-D (rows, cols) array, got shape {a.shape}", p)
        return pixels_to_grey(a, scale="as_is", intensity=intensity, source=p), spacing
    from .images import _open, _page_array, _to_grey

    if not p.is_file():
        raise DatasetError("file is missing", p)
    with _open(p) as im:
        raw, info = _page_array(im, p, 0)
    grey, _ = _to_grey(raw, info, "refuse", p, 0, intensity)
    return grey, None


def _num(v: str | None) -> float | None:
    if v is None or str(v).strip() == "":
        return None
    try:
        return float(v)
    except ValueError:
        return None


@dataclass
class DatasetItem:
    """One frame of a dataset: its `Frame`, optional label map and truth, and manifest row."""

    id: str
    subject_id: str | None
    frame: Frame
    label: np.ndarray | None
    truth: dict | None
    row: dict[str, str]


class Dataset:
    """A validated dataset folder; a sequence of `DatasetItem` (loaded lazily).

    Use `read_dataset` to open one.
    """

    def __init__(self, root: Path, rows: list[dict[str, str]]):
        self.root = root
        self.rows = rows
        self._index = {r["id"]: i for i, r in enumerate(rows)}

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def ids(self) -> list[str]:
        return [r["id"] for r in self.rows]

    def __getitem__(self, key: int | str) -> DatasetItem:
        i = self._index[key] if isinstance(key, str) else int(key)
        return self._load(self.rows[i])

    def __iter__(self) -> Iterator[DatasetItem]:
        for r in self.rows:
            yield self._load(r)

    def _load(self, r: dict[str, str]) -> DatasetItem:
        img_path = self.root / r["image"]
        intensity = (r.get("intensity") or "display").strip() or "display"
        img, hdr_spacing = load_image(img_path, intensity)
        spacing = hdr_spacing
        calib = "header" if hdr_spacing is not None else None
        ay, ax = _num(r.get("spacing_axial_mm")), _num(r.get("spacing_lateral_mm"))
        if ay is not None and ax is not None:
            spacing, calib = (ay, ax), "manifest"
        elasto = kind = None
        if r.get("elasto"):
            elasto, _ = load_array(self.root / r["elasto"])
            kind = r.get("elasto_kind") or None
        meta = FrameMeta(source=str(img_path), calibration=calib, region=r.get("region") or None,
                         device=r.get("device") or None, frequency_mhz=_num(r.get("frequency_mhz")),
                         subject_key=r.get("subject_id") or None,
                         extra={"dataset_id": r["id"]})
        frame = Frame(img, spacing, intensity=intensity,
                      dynamic_range_db=_num(r.get("dynamic_range_db")), elasto=elasto,
                      elasto_kind=kind, meta=meta)
        label = None
        if r.get("label"):
            # a label map holds class indices 0-7: loaded raw, never rescaled like an image
            label, _ = load_array(self.root / r["label"])
            label = label.astype(np.uint8)
        truth = None
        if r.get("truth"):
            with open(self.root / r["truth"]) as f:
                truth = json.load(f)
        return DatasetItem(r["id"], r.get("subject_id") or None, frame, label, truth, r)

    def validate(self, check_values: bool = True) -> list[str]:
        """Every problem found, one string each (empty when the dataset is sound).

        Checks that files exist and decode, label and elastography shapes equal the image's,
        labels lie in 0-7 (when `check_values`), spacing is known, ``elasto_kind`` is valid.
        """
        problems: list[str] = []
        for r in self.rows:
            fid = r["id"]
            intensity = (r.get("intensity") or "display").strip() or "display"
            try:
                img, hdr_spacing = load_image(self.root / r["image"], intensity)
            except LayersegError as e:
                problems.append(f"{fid}: image {e}")
                continue
            if img.ndim != 2:
                problems.append(f"{fid}: image {r['image']} is not a 2-D grey image "
                                f"(shape {img.shape})")
                continue
            if hdr_spacing is None and (_num(r.get("spacing_axial_mm")) is None or
                                        _num(r.get("spacing_lateral_mm")) is None):
                problems.append(f"{fid}: no spacing (image {r['image']} has no header spacing and "
                                "the manifest has no spacing_axial_mm/spacing_lateral_mm)")
            if r.get("label"):
                try:
                    lab, _ = load_array(self.root / r["label"])
                except LayersegError as e:
                    problems.append(f"{fid}: label {e}")
                else:
                    try:
                        check_label_map(lab if check_values else np.zeros(lab.shape, np.uint8),
                                        img.shape, what=f"label {r['label']}")
                    except LabelMapError as e:
                        problems.append(f"{fid}: {e.problem}")
            if r.get("elasto"):
                kind = r.get("elasto_kind") or ""
                if kind not in ("swe_kpa", "strain"):
                    problems.append(f"{fid}: elasto_kind must be swe_kpa or strain, got {kind!r}")
                try:
                    el, _ = load_array(self.root / r["elasto"])
                except LayersegError as e:
                    problems.append(f"{fid}: elasto {e}")
                else:
                    if el.shape != img.shape:
                        problems.append(f"{fid}: elasto {r['elasto']} shape {el.shape} differs "
                                        f"from image shape {img.shape}")
            if r.get("truth") and not (self.root / r["truth"]).is_file():
                problems.append(f"{fid}: truth file {r['truth']} is missing")
        return problems


_BOMS = ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"),
         (codecs.BOM_UTF16_BE, "utf-16"))


def read_manifest_text(path: str | os.PathLike) -> str:
    """The text of a manifest, its encoding detected from its byte-order mark.

    UTF-8 with or without a BOM, and UTF-16 (little or big endian) with a BOM, are read; anything
    else must be valid UTF-8.

    Parameters
    ----------
    path : str or path-like
        The ``manifest.csv`` file.

    Returns
    -------
    str
        The decoded text (BOM removed).

    Raises
    ------
    DatasetError
        The file cannot be read, or holds bytes that are not valid in the detected encoding (the
        message gives the line and byte offset of the first bad bytes and how to fix it), or NUL
        characters (a binary file).
    """
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as e:
        raise DatasetError(f"manifest cannot be read ({e.strerror or e})", p) from e
    encoding = next((enc for bom, enc in _BOMS if raw.startswith(bom)), "utf-8")
    try:
        text = raw.decode(encoding)
    except UnicodeDecodeError as e:
        line = raw[:e.start].count(b"\n" if encoding != "utf-16" else "\n".encode(
            "utf-16-le" if raw.startswith(codecs.BOM_UTF16_LE) else "utf-16-be")) + 1
        bad = raw[e.start:e.end]
        what = "UTF-16 (it starts with a UTF-16 byte-order mark)" if encoding == "utf-16" \
            else "UTF-8"
        raise DatasetError(f"manifest is not valid {what}: bytes {bad!r} at byte offset "
                           f"{e.start} (line {line}) cannot be decoded ({e.reason}); save it as "
                           "UTF-8 (for example from a spreadsheet: CSV UTF-8)", p) from e
    if "\x00" in text:
        at = text.index("\x00")
        raise DatasetError(f"manifest holds a NUL character (line {text.count(chr(10), 0, at) + 1}"
                           "): it is a binary file, not a CSV text file", p)
    return text


def read_dataset(root: str | os.PathLike, validate: bool = True,
                 check_values: bool = True) -> Dataset:
    """Open a dataset folder, validating it first.

    Parameters
    ----------
    root : path
        Folder holding ``manifest.csv``.
    validate : bool
        Check every file before returning (default); raises `DatasetError` listing all problems.
    check_values : bool
        Also decode label maps to check their values (slower on large datasets).

    Returns
    -------
    Dataset
    """
    root = Path(root)
    mpath = root / "manifest.csv"
    if not root.is_dir():
        raise DatasetError("dataset folder does not exist", root)
    if not mpath.is_file():
        raise DatasetError("no manifest.csv in the dataset folder (see DESIGN.md for the layout)",
                           root)
    text = read_manifest_text(mpath)
    try:
        reader = csv.DictReader(io.StringIO(text, newline=""))
        cols = reader.fieldnames or []
        rows = [dict(r) for r in reader]
    except csv.Error as e:
        raise DatasetError(f"manifest is not a readable CSV file (line {reader.line_num}: {e})",
                           mpath) from e
    missing = [c for c in ("id", "image") if c not in cols]
    if missing:
        raise DatasetError(f"manifest lacks required column(s) {missing}", mpath)
    problems = []
    seen: set[str] = set()
    for i, r in enumerate(rows, start=2):
        if not r.get("id"):
            problems.append(f"line {i}: empty id")
        elif r["id"] in seen:
            problems.append(f"line {i}: duplicate id {r['id']!r}")
        seen.add(r.get("id", ""))
        if not r.get("image"):
            problems.append(f"line {i}: empty image path")
    if problems:
        raise DatasetError("malformed manifest", mpath, problems)
    ds = Dataset(root, rows)
    if validate:
        problems = ds.validate(check_values=check_values)
        if problems:
            raise DatasetError(f"{len(problems)} problem(s) in the dataset", root, problems)
    return ds

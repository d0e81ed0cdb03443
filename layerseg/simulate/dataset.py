"""`simulate_dataset`: many simulated frames written as the DESIGN.md dataset layout (manifest +
images + labels + elastography + truth JSON), or as scanner-style multi-frame DICOM exams.

Subjects (pseudonymous ``simNNNNN`` ids) have a sex, an age, several regions and 1-3 frames per
region (one *exam* = one subject and region, one probe frequency and one elastography kind). The
plan is drawn from ``SeedSequence(seed, spawn_key=(0,))`` and frame ``i`` is simulated from
``SeedSequence(seed, spawn_key=(1, i))``, so the bytes written do not depend on the number of
workers. Workers write their own files; the manifest is assembled in frame order at the end.
"""

from __future__ import annotations

import csv
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..io.safe_write import atomic_write, check_writable
from ..errors import ConfigError, DatasetError
from ..layers.profiles import canonical_region
from .anatomy import SIM_REGIONS

__all__ = ["simulate_dataset", "plan_dataset", "ExamPlan"]

_FREQS = (18.0, 20.0, 22.0, 30.0, 33.0)


@dataclass(frozen=True)
class ExamPlan:
    """One subject-region exam: the frames' dataset indices and ids and the shared settings."""

    subject_id: str
    sex: str
    age: float
    region: str
    split: str
    frequency_mhz: float
    elasto_kind: str
    jpeg: bool
    indices: tuple[int, ...]
    frame_ids: tuple[str, ...]


def plan_dataset(n: int, *, seed: int = 0, region: str | None = None,
                 age_range: tuple[float, float] = (20, 80)) -> list[ExamPlan]:
    """Subjects, exams and frame ids of a dataset of `n` frames (deterministic in `seed`).

    Parameters
    ----------
    n : int
        Number of frames (>= 1).
    seed : int
    region : str or None
        Only this region (alias allowed); None: 2-4 regions per subject from `SIM_REGIONS`.
    age_range : (min, max)
        Uniform subject ages in years (10-100).

    Returns
    -------
    list of ExamPlan
        Frame indices run 0..n-1 in order over the exams.
    """
    if int(n) < 1:
        raise ConfigError(f"n must be at least 1, got {n}")
    lo, hi = (float(a) for a in age_range)
    if not (10 <= lo <= hi <= 100):
        raise ConfigError(f"age_range must satisfy 10 <= min <= max <= 100, got {age_range}")
    reg = None if region is None else canonical_region(region)
    rng = np.random.default_rng(np.random.SeedSequence(int(seed), spawn_key=(0,)))
    exams: list[ExamPlan] = []
    i = 0
    subj = 0
    while i < n:
        sid = f"sim{subj:05d}"
        sex = "F" if rng.random() < 0.5 else "M"
        age = round(float(rng.uniform(lo, hi)), 1)
        u = rng.random()
        split = "train" if u < 0.7 else ("val" if u < 0.85 else "test")
        regs = [reg] if reg else list(rng.choice(SIM_REGIONS, size=int(rng.integers(2, 5)),
                                                 replace=False))
        for r in regs:
            k = min(int(rng.integers(1, 4)), n - i)
            if k <= 0:
                break
            freq = 24.0 if rng.random() < 0.7 else float(rng.choice(_FREQS))
            kind = "swe_kpa" if rng.random() < 0.8 else "strain"
            jpeg = bool(rng.random() < 0.5)
            idx = tuple(range(i, i + k))
            ids = tuple(f"{sid}_{r}_{j + 1:02d}" for j in range(k))
            exams.append(ExamPlan(sid, sex, age, str(r), split, freq, kind, jpeg, idx, ids))
            i += k
        subj += 1
    return exams


def _frame_seed(seed: int, index: int) -> np.random.SeedSequence:
    return np.random.SeedSequence(int(seed), spawn_key=(1, int(index)))


def _run_exam(args) -> list[dict[str, Any]]:
    exam, seed, root, fmt, image_format, write_rf, sim_kwargs = args
    from ..io.dataset import write_frame_files
    from .core import simulate_frame

    root = Path(root)
    rows, frames = [], []
    for idx, fid in zip(exam.indices, exam.frame_ids):
        # with drawn ranges ('wide', 'wide_faint') every frame draws its own probe (the plan's
        # frequency is ignored)
        freq = None if sim_kwargs.get("ranges", "default") != "default" else exam.frequency_mhz
        s = simulate_frame(_frame_seed(seed, idx), region=exam.region, age=exam.age,
                           sex=exam.sex, frequency_mhz=freq,
                           elasto_kind=exam.elasto_kind, return_rf=write_rf == "rf",
                           return_iq=write_rf == "iq", **sim_kwargs)
        s.frame.meta.subject_key = exam.subject_id
        s.truth["seed"] = {"dataset_seed": int(seed), "index": int(idx)}
        s.truth.update(subject_id=exam.subject_id, frame_id=fid)
        if fmt == "dataset":
            row = write_frame_files(root, s.frame, fid, label=s.labels, truth=s.truth,
                                    image_format=image_format)
        else:
            row = write_frame_files(root / "truth_frames", s.frame, fid, label=s.labels,
                                    truth=s.truth, image_format=image_format)
            frames.append(s.frame)
        row.update(subject_id=exam.subject_id, split=exam.split, age=exam.age, sex=exam.sex,
                   region=exam.region)
        if write_rf:
            row["rf"] = _write_rf(root if fmt == "dataset" else root / "truth_frames", fid, s,
                                  write_rf)
        rows.append(row)
    if fmt == "dicom":
        from .dicom_export import write_exam_dicom
        path = root / "dicom" / exam.subject_id / f"{exam.region}.dcm"
        write_exam_dicom(path, frames, patient_name=f"SIM^{exam.subject_id.upper()}",
                         patient_id=exam.subject_id, jpeg=exam.jpeg, patient_sex=exam.sex,
                         patient_age=exam.age)
        for k, row in enumerate(rows):
            row.update(dicom=path.relative_to(root).as_posix(), dicom_frame=k)
    return rows


def _write_rf(root: Path, fid: str, s, kind: str) -> str:
    """Write rf/<id>.npy (RF after TGC, or IQ before TGC) + its sidecar for layerseg.io.read_rf."""
    d = root / "rf"
    d.mkdir(parents=True, exist_ok=True)
    ac = s.truth["acoustics"]
    if kind == "rf":
        arr, fs, iq = s.rf, ac["rf_fs_mhz"], False
    else:
        arr, fs, iq = s.iq, ac["iq_fs_mhz"], True
    np.save(d / f"{fid}.npy", arr)
    side = {"fs_mhz": fs, "f0_mhz": ac["frequency_mhz"], "line_pitch_mm": s.frame.spacing_mm[1],
            "c_m_s": 1540.0, "dynamic_range_db": s.frame.dynamic_range_db, "iq": iq,
            "pixel_mm": list(s.frame.spacing_mm)}
    import json
    (d / f"{fid}.json").write_text(json.dumps(side, indent=1))
    return f"rf/{fid}.npy"


def simulate_dataset(out: str | os.PathLike, n: int, *, seed: int = 0,
                     region: str | None = None, age_range: tuple[float, float] = (20, 80),
                     workers: int = 1, fmt: str = "dataset", progress: bool = True,
                     image_format: str = "png", write_rf: str | None = None,
                     ranges: str = "default", anatomy: str = "default",
                     **sim_kwargs) -> Path:
    """Simulate `n` frames into the folder `out`.

    Parameters
    ----------
    out : path
        Output folder; must not hold a manifest already.
    n : int
        Number of frames.
    seed : int
        Dataset seed; frame ``i`` uses ``SeedSequence(seed, spawn_key=(1, i))``.
    region : str or None
        One region for all frames, or None for several regions per subject.
    age_range : (min, max)
        Subject ages (years).
    workers : int
        Parallel processes (1 = in this process). The output bytes do not depend on it.
    fmt : {'dataset', 'dicom'}
        ``dataset``: DESIGN.md layout (``manifest.csv``, ``images/``, ``labels/``, ``elasto/``,
        ``truth/``). ``dicom``: one multi-frame US DICOM per exam under
        ``dicom/<subject>/<region>.dcm`` (B-mode beside the colour elastography, JPEG baseline
        for about half the exams, synthetic patient names), with the frames' labels, truth and
        images in ``truth_frames/`` (a dataset layout) and ``exams.csv`` listing the exams.
    progress : bool
        Show a tqdm progress bar (frames).
    image_format : {'png', 'npy'}
        B-mode image files (8-bit PNG, or float32 .npy keeping the exact grey levels).
    write_rf : {None, 'rf', 'iq'}
        Also write ``rf/<id>.npy`` (RF lines after TGC, or baseband IQ before TGC) with a sidecar
        JSON that `layerseg.io.read_rf` reads (manifest column ``rf``).
    ranges : {'default', 'wide', 'wide_faint'}
        Parameter ranges (`simulate_frame`): ``default`` writes the same bytes as before ranges
        existed; ``wide`` (and ``wide_faint``, its faint-fat form) draws probe, display and
        per-layer echogenicity per frame from ``layerseg/data/sim_ranges.json`` (the exam
        plan's frequency is then not used; each frame's truth JSON records its drawn values
        under ``ranges``).
    anatomy : {'default', 'varied', 'decoupled'}
        Anatomy variant (`simulate_frame`): ``varied`` draws layer presence and per-layer
        thickness factors, ``decoupled`` that presence and region-independent thicknesses, from
        ``variants`` of ``sim_anatomy.json`` (training and robustness sets); ``default``
        writes the same bytes as before variants existed.
    **sim_kwargs
        Passed to `simulate_frame` (e.g. ``shape``, ``depth_mm``, ``vary``).

    Returns
    -------
    Path
        The output folder.
    """
    if fmt not in ("dataset", "dicom"):
        raise ConfigError(f"fmt must be 'dataset' or 'dicom', got {fmt!r}")
    if image_format not in ("png", "npy"):
        raise ConfigError(f"image_format must be 'png' or 'npy', got {image_format!r}")
    if write_rf not in (None, "rf", "iq"):
        raise ConfigError(f"write_rf must be None, 'rf' or 'iq', got {write_rf!r}")
    if int(workers) < 1:
        raise ConfigError(f"workers must be at least 1, got {workers}")
    from .ranges import RANGES
    if ranges not in RANGES:
        raise ConfigError(f"ranges must be one of {RANGES}, got {ranges!r}")
    if ranges != "default":
        sim_kwargs = {**sim_kwargs, "ranges": ranges}
    from .anatomy import ANATOMY_VARIANTS
    if anatomy not in ANATOMY_VARIANTS:
        raise ConfigError(f"anatomy must be one of {ANATOMY_VARIANTS}, got {anatomy!r}")
    if anatomy != "default":
        sim_kwargs = {**sim_kwargs, "anatomy": anatomy}
    from .core import DEFAULT_DEPTH_MM, DEFAULT_SHAPE, DEFAULT_WIDTH_MM, check_field
    check_field(sim_kwargs.get("shape", DEFAULT_SHAPE),
                sim_kwargs.get("depth_mm", DEFAULT_DEPTH_MM),
                sim_kwargs.get("width_mm", DEFAULT_WIDTH_MM))   # before any folder is made
    root = Path(out)
    for name in ("manifest.csv", "exams.csv"):
        if (root / name).exists():
            raise DatasetError(f"{name} exists; refusing to overwrite a dataset", root)
    exams = plan_dataset(n, seed=seed, region=region, age_range=age_range)
    check_writable(root)   # before any frame is simulated
    jobs = [(e, int(seed), str(root), fmt, image_format, write_rf, sim_kwargs) for e in exams]
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=int(n), unit="frame", desc="simulate")
    results: list[list[dict]] = []
    try:
        if int(workers) == 1:
            for j in jobs:
                results.append(_run_exam(j))
                if bar:
                    bar.update(len(j[0].indices))
        else:
            import multiprocessing as mp
            with ProcessPoolExecutor(int(workers), mp_context=mp.get_context("spawn")) as ex:
                for res, j in zip(ex.map(_run_exam, jobs), jobs):
                    results.append(res)
                    if bar:
                        bar.update(len(j[0].indices))
    finally:
        if bar:
            bar.close()
    rows = [r for res in results for r in res]
    from ..io.dataset import write_manifest
    if fmt == "dataset":
        write_manifest(root, rows)
    else:
        write_manifest(root / "truth_frames", rows)
        with atomic_write(root / "exams.csv", "w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow(["dicom", "subject_id", "region", "sex", "age", "split", "frequency_mhz",
                        "elasto_kind", "jpeg", "n_frames", "frame_ids"])
            for e in exams:
                w.writerow([f"dicom/{e.subject_id}/{e.region}.dcm", e.subject_id, e.region,
                            e.sex, e.age, e.split, e.frequency_mhz, e.elasto_kind, int(e.jpeg),
                            len(e.indices), " ".join(e.frame_ids)])
    return root

"""Small inputs for the batch inference tests: two simulated multi-frame US DICOM exams
(256 x 256 B-mode, shear-wave elastography beside it, identifying header fields set) and a PNG
with a sidecar JSON spacing, in a folder with a hidden file that the walk must skip."""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image

SAMPLES = Path(__file__).resolve().parents[2] / "data" / "samples" / "sim"
SPACING = (0.03125, 0.03125)
KPA = {"epidermis": 20.0, "dermis": 12.0, "fat": 4.0, "smas": 10.0, "deep_fat": 5.0,
       "muscle": 9.0, "bone": 1000.0}
IDS = {"PatientName": "Doe^Jane", "PatientID": "PID-12345", "PatientBirthDate": "19700101",
       "InstitutionName": "Secret Clinic"}
"""Identifiers written into the DICOM test inputs; none may reach an output."""


def _frames(names, seed):
    from layerseg.frame import Frame, FrameMeta
    from layerseg.simulate.elasto import simulate_swe
    rng = np.random.default_rng(seed)
    out = []
    for n in names:
        grey = np.asarray(Image.open(SAMPLES / f"{n}.png"), dtype=np.float32)
        lab = np.asarray(Image.open(SAMPLES / "labels" / f"{n}.png")).astype(np.int64)
        e, _ = simulate_swe(lab, SPACING, KPA, rng, resolution_mm=0.5, noise_frac=0.1)
        out.append(Frame(grey, SPACING, elasto=e, elasto_kind="swe_kpa",
                         meta=FrameMeta(frequency_mhz=24.0)))
    return out


def write_exam(path: Path, names, seed: int) -> Path:
    """A simulated exam DICOM at `path` with the identifying header fields of `IDS`."""
    from layerseg.simulate.dicom_export import write_exam_dicom
    write_exam_dicom(path, _frames(names, seed), patient_name=IDS["PatientName"],
                     patient_id=IDS["PatientID"], study_uid=f"1.2.826.0.1.3680043.8.498.{seed}")
    ds = pydicom.dcmread(path)
    ds.PatientBirthDate = IDS["PatientBirthDate"]
    ds.InstitutionName = IDS["InstitutionName"]
    ds.save_as(path, enforce_file_format=True)
    return path


@pytest.fixture(scope="session")
def _inputs_src(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("infer_inputs") / "in"
    write_exam(root / "exam_a.dcm", ["cheek_f32", "jaw_f55"], 1)
    write_exam(root / "clinic" / "PID-12345_exam_b.dcm", ["jaw_f55", "cheek_f32"], 2)
    shutil.copy(SAMPLES / "forehead_m68.png", root / "clinic" / "capture.png")
    shutil.copy(SAMPLES / "forehead_m68.json", root / "clinic" / "capture.json")
    shutil.copy(SAMPLES / "cheek_f32.png", root / ".hidden.png")
    return root


@pytest.fixture
def inputs(_inputs_src, tmp_path) -> Path:
    """A fresh copy of the input folder: 3 exams (2 DICOM of 2 frames, 1 PNG + sidecar)."""
    dst = tmp_path / "in"
    shutil.copytree(_inputs_src, dst)
    return dst


N_EXAMS, N_FRAMES = 3, 5


def digest_tree(root: Path) -> dict[str, str]:
    """``{relative path: sha256}`` of every file under `root` (hidden ones included)."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def run_cli(*args) -> int:
    from layerseg.cli import main
    return main(["infer", *map(str, args)])


def summary(out: Path) -> dict:
    return json.loads((out / "summary.json").read_text())


PY = sys.executable

TIMED_FILES = ("run.log", "summary.json")
"""Outputs that carry timestamps and timings (the rest of a run's outputs is byte-stable)."""


def assert_same_outputs(ref: Path, out: Path) -> None:
    """Two runs' output folders hold the same files with the same bytes (timed files aside) and
    the same summary apart from its timed fields."""
    from layerseg.infer import TIMED_FIELDS
    a, b = digest_tree(ref), digest_tree(out)
    assert sorted(b) == sorted(a)
    for name in a:
        if name not in TIMED_FILES:
            assert b[name] == a[name], (out, name)
    sa, sb = summary(ref), summary(out)
    assert {k: v for k, v in sa.items() if k not in TIMED_FIELDS} == \
        {k: v for k, v in sb.items() if k not in TIMED_FIELDS}


def flaky_read(monkeypatch, bad_index, n=4, counter=None):
    """`layerseg.io.read` giving, for any file, `n` copies of its first frame, frame `bad_index`
    failing to decode (None: none fails); `counter` counts the decodes."""
    import layerseg.io
    from layerseg.errors import CorruptFileError
    from layerseg.frame import FrameSeries
    real = layerseg.io.read

    def read(path, spacing=None, **kw):
        first = real(path, spacing=spacing, **kw)[0]

        def load(i):
            if counter is not None:
                counter.append(i)
            if i == bad_index:
                raise CorruptFileError(f"frame {i} is damaged", path)
            return first

        return FrameSeries(n, load, source=str(path))

    monkeypatch.setattr(layerseg.io, "read", read)


@pytest.fixture
def kit():
    """The helpers above, for the test modules (conftest cannot be imported under
    ``--import-mode=importlib``)."""
    from types import SimpleNamespace
    return SimpleNamespace(run_cli=run_cli, summary=summary, digest_tree=digest_tree, IDS=IDS,
                           N_EXAMS=N_EXAMS, N_FRAMES=N_FRAMES, PY=PY, write_exam=write_exam,
                           assert_same_outputs=assert_same_outputs, flaky_read=flaky_read)

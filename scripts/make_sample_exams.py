"""Write the bundled sample exams into data/samples/exams/ (deterministic, small): simulated
multi-frame 24 MHz facial ultrasound DICOM exams with region calibration and elastography beside
the B-mode, as a scanner exports them. They are what the README's main command
(`bash scripts/demo.sh`, i.e. `layerseg infer`) runs on.

    python scripts/make_sample_exams.py [--out data/samples/exams]

Each exam has a sidecar `<exam>.json` stating its facial region (`{"region": "cheek"}`), which
`layerseg infer` reads. The patient fields are synthetic ("SAMPLE^CHEEK", ...); `layerseg infer` keeps them out of its
outputs unless --keep-ids. Frames: 256 x 256 pixels, JPEG baseline, 2-3 frames per exam.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from layerseg.simulate import simulate_frame
from layerseg.simulate.dicom_export import write_exam_dicom

EXAMS = [  # (file stem, region, age, sex, frequency MHz, elastography, frames, seed)
    ("exam_cheek", "cheek", 34, "F", 24.0, "swe_kpa", 3, 101),
    ("exam_forehead", "forehead", 67, "M", 24.0, "strain", 2, 202),
    ("exam_jaw", "jaw", 52, "F", 22.0, "swe_kpa", 2, 303),
]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent.parent
                    / "data" / "samples" / "exams")
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    for stem, region, age, sex, f_mhz, kind, n, seed in EXAMS:
        frames = [simulate_frame(np.random.SeedSequence(seed, spawn_key=(i,)), region=region,
                                 age=age, sex=sex, frequency_mhz=f_mhz, elasto_kind=kind,
                                 shape=(256, 256)).frame for i in range(n)]
        p = write_exam_dicom(args.out / f"{stem}.dcm", frames, patient_name=f"SAMPLE^{region.upper()}",
                             patient_id=f"SAMPLE-{seed}", jpeg=True, patient_sex=sex,
                             patient_age=age)
        # a scanner export carries no facial region: the exam's sidecar states it
        p.with_suffix(".json").write_text(json.dumps({"region": region}) + "\n")
        print(f"{p}: {n} frame(s), {region}, {kind}, {p.stat().st_size // 1024} kB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Write small simulated sample frames for the demo: data/samples/sim/<name>.png (8-bit grey
B-mode) + <name>.json (sidecar: spacing, dynamic range, frequency, region, truth summary) +
labels/<name>.png (label map 0-7) + truth/<name>.json (per-layer truth, acoustics).

    python scripts/make_sim_samples.py [--out data/samples/sim]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from PIL import Image

from layerseg.simulate import simulate_frame

SAMPLES = (("cheek_f32", dict(region="cheek", age=32, sex="F"), 11),
           ("forehead_m68", dict(region="forehead", age=68, sex="M"), 12),
           ("jaw_f55", dict(region="jaw", age=55, sex="F"), 13))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("data/samples/sim"))
    args = ap.parse_args(argv)
    (args.out / "labels").mkdir(parents=True, exist_ok=True)
    for name, kw, seed in SAMPLES:
        s = simulate_frame(seed, shape=(256, 256), depth_mm=8.0, width_mm=8.0, vary=False,
                           with_elasto=False, standoff_mm=0.3, **kw)
        f = s.frame
        Image.fromarray(np.clip(np.rint(f.bmode), 0, 255).astype(np.uint8)).save(
            args.out / f"{name}.png", optimize=True)
        Image.fromarray(s.labels).save(args.out / "labels" / f"{name}.png", optimize=True)
        side = {"spacing_mm": list(f.spacing_mm), "dynamic_range_db": f.dynamic_range_db,
                "frequency_mhz": f.meta.frequency_mhz, "device": f.meta.device,
                "region": f.meta.region,
                "comment": f"simulated by layerseg.simulate (seed {seed}, {kw['sex']} "
                           f"{kw['age']} y); label map labels/{name}.png, truth "
                           f"truth/{name}.json; made by scripts/make_sim_samples.py"}
        (args.out / f"{name}.json").write_text(json.dumps(side, indent=1) + "\n")
        (args.out / "truth").mkdir(exist_ok=True)
        (args.out / "truth" / f"{name}.json").write_text(
            json.dumps({k: s.truth[k] for k in ("region", "age", "sex", "layers", "sleb",
                                                "upper_lower_dermis_db", "acoustics")},
                       indent=1, sort_keys=True) + "\n")
        print(args.out / f"{name}.png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

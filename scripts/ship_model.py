"""Turn a training checkpoint into the small file layerseg ships (weights and hyperparameters).

    python scripts/ship_model.py runs/default_cpu/lightning_logs/version_0/checkpoints/last.ckpt \
        --out layerseg/data/models/default.ckpt --name default --config configs/default_cpu.yaml

The input is read with ``weights_only=True`` (as every checkpoint layerseg opens); the output
keeps the network's ``state_dict`` and ``hyper_parameters`` (what
`layerseg.segmentation.trained.predict.load_task` needs) plus a ``layerseg_model`` record (name,
source checkpoint's global step and epoch, config file and its SHA-256, torch/MONAI versions),
and drops the optimiser state, so it is a fraction of the size. Refuses to overwrite an
existing file unless ``--force``.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("ckpt", type=Path)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--name", default="default")
    ap.add_argument("--config", type=Path, default=None)
    ap.add_argument("--force", action="store_true")
    a = ap.parse_args(argv)

    import monai
    import torch

    from layerseg.segmentation.trained.predict import load_checkpoint, load_task

    if a.out.exists() and not a.force:
        print(f"{a.out}: exists; pass --force to replace it", file=sys.stderr)
        return 2
    ck = load_checkpoint(a.ckpt)
    load_task(a.ckpt)                          # the weights fit the network they describe
    record = {"name": a.name, "global_step": int(ck.get("global_step", -1)),
              "epoch": int(ck.get("epoch", -1)), "torch": str(torch.__version__),
              "monai": str(monai.__version__)}
    if a.config is not None:
        record["config"] = a.config.as_posix()
        record["config_sha256"] = hashlib.sha256(a.config.read_bytes()).hexdigest()
    out = {"state_dict": {k: v.detach().clone().float() if v.is_floating_point() else v.clone()
                          for k, v in ck["state_dict"].items()},
           "hyper_parameters": dict(ck["hyper_parameters"]), "layerseg_model": record}
    a.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = a.out.with_suffix(".tmp")
    torch.save(out, tmp)
    tmp.replace(a.out)
    load_task(a.out)                           # the shipped file loads (weights_only) as it is
    print(f"{a.out}: {a.out.stat().st_size / 1e6:.2f} MB, step {record['global_step']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""A real training run of the small CPU config (2000 steps on simulated frames): the network
learns the layers. Slow: run with ``-m slow``."""

import json
from pathlib import Path

import pytest

pytest.importorskip("lightning")

from layerseg.cli import main  # noqa: E402

CONFIGS = Path(__file__).resolve().parents[3] / "configs"


@pytest.mark.slow
def test_small_cpu_training_learns(tmp_path, tiny_dataset):
    assert main(["fit", "--config", str(CONFIGS / "unet_small_cpu.yaml"),
                 "--trainer.max_steps=2000", "--trainer.enable_progress_bar=false",
                 f"--trainer.default_root_dir={tmp_path}"]) == 0
    ckpt = sorted(tmp_path.rglob("last.ckpt"))[0]
    out = tmp_path / "acc.json"
    assert main(["bench", "accuracy", "--data", str(tiny_dataset), "--model", str(ckpt),
                 "--json", str(out)]) == 0
    s = json.loads(out.read_text())
    assert s["order_violations"] == 0
    assert s["layers"]["dermis"]["dice"] > 0.6

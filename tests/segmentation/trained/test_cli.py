"""``layerseg fit|validate|test|predict`` through the one LightningCLI: every config runs with
frames simulated on the fly (fast_dev_run, tiny sizes by override)."""

from pathlib import Path

import pytest

pytest.importorskip("lightning")
pytest.importorskip("jsonargparse")

from layerseg.cli import main  # noqa: E402

CONFIGS = Path(__file__).resolve().parents[3] / "configs"
TINY = ["--trainer.fast_dev_run=true", "--data.num_workers=0", "--data.patch_size=[32,32]",
        "--data.batch_size=2", "--data.sim_frames=[2,1,1]", "--data.sim_shape=[80,64]",
        "--data.sim_depth_mm=8.0", "--data.sim_width_mm=6.4", "--data.spacing_mm=[0.1,0.1]",
        "--model.channels=[4,8,16]"]
ON_CPU = ["--trainer.accelerator=cpu", "--trainer.devices=1", "--trainer.precision=32-true",
          "--trainer.strategy=auto", "--trainer.num_nodes=1"]


def test_help_and_print_config(capsys):
    with pytest.raises(SystemExit) as e:
        main(["fit", "--help"])
    assert e.value.code == 0
    assert "--config" in capsys.readouterr().out
    with pytest.raises(SystemExit) as e:
        main(["fit", "--config", str(CONFIGS / "unet_small_cpu.yaml"), "--print_config"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert "net: UNet" in out and "spacing_mm" in out


def test_fast_dev_run_small_cpu(tmp_path):
    assert main(["fit", "--config", str(CONFIGS / "unet_small_cpu.yaml"), *TINY,
                 f"--trainer.default_root_dir={tmp_path}"]) == 0

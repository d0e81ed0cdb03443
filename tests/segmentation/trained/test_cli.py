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


def test_every_config_is_tested():
    assert sorted(p.name for p in CONFIGS.glob("*.yaml")) == sorted(
        ["default_cpu.yaml", "default_cpu_widen.yaml", "surface_cpu.yaml",
         "unet_small_cpu.yaml", "unet_gpu.yaml", "unet_ddp.yaml"])


@pytest.mark.parametrize("name, extra", [("unet_small_cpu.yaml", []), ("unet_gpu.yaml", ON_CPU),
                                         ("unet_ddp.yaml", ON_CPU), ("default_cpu.yaml", []),
                                         ("surface_cpu.yaml", [])])
def test_fast_dev_run(name, extra, tmp_path):
    # every config runs as it stands with frames simulated on the fly (tiny sizes by override)
    assert main(["fit", "--config", str(CONFIGS / name), *TINY, *extra,
                 f"--trainer.default_root_dir={tmp_path}"]) == 0


def test_fast_dev_run_of_the_fine_tune_stage(tmp_path, save_task):
    # the default model's stage 2 starts from stage 1's weights (model.init_from): a stage-1
    # network of the tiny size, saved as layerseg ships checkpoints
    from layerseg.segmentation.trained.task import SegmentationTask
    stage1 = SegmentationTask(channels=(4, 8, 16), norm="batch", num_res_units=1,
                              infer_mode="whole", spacing_mm=(0.1, 0.1), patch_size=(32, 32))
    ck = save_task(stage1, tmp_path / "stage1.ckpt")
    assert main(["fit", "--config", str(CONFIGS / "default_cpu_widen.yaml"), *TINY,
                 f"--model.init_from={ck}", f"--trainer.default_root_dir={tmp_path}"]) == 0
    # as it stands, without stage 1's checkpoint, it stops with a clear error
    assert main(["fit", "--config", str(CONFIGS / "default_cpu_widen.yaml"), *TINY,
                 f"--model.init_from={tmp_path / 'missing.ckpt'}",
                 f"--trainer.default_root_dir={tmp_path}"]) == 2


@pytest.mark.parametrize("net", ["AttentionUnet", "SegResNet", "DynUNet", "SwinUNETR"])
def test_fast_dev_run_other_networks(net, tmp_path):
    # SwinUNETR down-samples by 32 and needs two pixels at its deepest stage: 64 x 64 patches
    patch = ["--data.patch_size=[64,64]", "--data.sim_shape=[128,128]"] \
        if net == "SwinUNETR" else []
    assert main(["fit", "--config", str(CONFIGS / "unet_small_cpu.yaml"), *TINY, *patch,
                 f"--model.net={net}", "--model.decode_val=false", "--model.channels=[8,16,32]",
                 f"--trainer.default_root_dir={tmp_path}"]) == 0


@pytest.mark.parametrize("net, patch, words", [("SwinUNETR", "[32,32]", "at least 64"),
                                               ("SwinUNETR", "[80,64]", "multiples of 32"),
                                               ("UNet", "[30,32]", "multiples of 4")])
def test_patch_the_network_cannot_take_is_refused(net, patch, words, tmp_path, capsys):
    assert main(["fit", "--config", str(CONFIGS / "unet_small_cpu.yaml"), *TINY,
                 f"--model.net={net}", f"--data.patch_size={patch}",
                 f"--trainer.default_root_dir={tmp_path}"]) == 2
    err = capsys.readouterr().err
    assert words in err and "patch_size" in err


def test_gpu_config_without_gpu(tmp_path, capsys):
    import torch
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    assert main(["fit", "--config", str(CONFIGS / "unet_gpu.yaml"), *TINY,
                 f"--trainer.default_root_dir={tmp_path}"]) == 2
    err = capsys.readouterr().err
    assert "unet_gpu.yaml" in err and "--trainer.accelerator=cpu" in err


def test_unknown_network_in_config(tmp_path, capsys):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text((CONFIGS / "unet_small_cpu.yaml").read_text().replace("net: UNet",
                                                                          "net: UNetz"))
    assert main(["fit", "--config", str(cfg), *TINY]) == 2
    err = capsys.readouterr().err
    assert "bad.yaml" in err and "UNetz" in err and "SwinUNETR" in err


def test_dataset_folder_errors_before_training(tmp_path, capsys):
    assert main(["fit", "--config", str(CONFIGS / "unet_small_cpu.yaml"), *TINY,
                 f"--data.datasets=[{tmp_path / 'nowhere'}]",
                 f"--trainer.default_root_dir={tmp_path}"]) == 2
    err = capsys.readouterr().err
    assert "nowhere" in err and "does not exist" in err


def test_two_process_cpu_ddp_fit(tmp_path):
    """The DDP config's strategy on two CPU processes (gloo): both ranks train a few steps,
    validate (MONAI metrics gathered across ranks), and rank 0 writes a checkpoint that loads
    outside the CLI."""
    import subprocess
    import sys

    from layerseg.segmentation.trained.predict import load_task

    root = tmp_path / "runs"
    cmd = [sys.executable, "-m", "layerseg", "fit", "--config", str(CONFIGS / "unet_ddp.yaml"),
           "--trainer.accelerator=cpu", "--trainer.devices=2", "--trainer.num_nodes=1",
           "--trainer.precision=32-true", "--trainer.max_steps=2",
           "--trainer.limit_val_batches=1", "--trainer.val_check_interval=null",
           "--trainer.check_val_every_n_epoch=1", f"--trainer.default_root_dir={root}",
           "--data.num_workers=0", "--data.patch_size=[32,32]", "--data.batch_size=2",
           "--data.sim_frames=[4,2,2]", "--data.sim_shape=[80,64]", "--data.sim_depth_mm=8.0",
           "--data.sim_width_mm=6.4", "--data.spacing_mm=[0.1,0.1]",
           "--model.channels=[4,8,16]"]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    log = p.stdout + p.stderr
    assert p.returncode == 0, log[-3000:]
    assert "GLOBAL_RANK: 1" in log and "MEMBER: 2/2" in log       # two processes joined
    assert "gloo" in log.lower() or "distributed_backend=gloo" in log
    ckpts = sorted(root.rglob("last.ckpt"))
    assert len(ckpts) == 1
    task = load_task(ckpts[0])
    assert task.hparams.channels == [4, 8, 16] or list(task.hparams.channels) == [4, 8, 16]


def test_last_checkpoint_holds_the_final_step(tmp_path):
    """A run whose max_steps is not a multiple of its checkpoint's every_n_train_steps (as the
    configs' 500 with --trainer.max_steps=750): Lightning alone leaves the last scheduled step
    (3) in last.ckpt; `layerseg fit` writes the final one (5)."""
    import torch
    root = tmp_path / "runs"
    args = [a for a in TINY if not a.startswith("--trainer.fast_dev_run")]
    assert main(["fit", "--config", str(CONFIGS / "default_cpu_widen.yaml"), *args,
                 "--model.init_from=null", "--trainer.max_steps=5",
                 "--trainer.val_check_interval=2", "--trainer.limit_val_batches=1",
                 '--trainer.callbacks=[{"class_path": "lightning.pytorch.callbacks.'
                 'ModelCheckpoint", "init_args": {"save_last": true, "save_top_k": 1, '
                 '"every_n_train_steps": 3}}]',
                 f"--trainer.default_root_dir={root}"]) == 0
    ckpts = sorted(root.rglob("last.ckpt"))
    assert len(ckpts) == 1
    ck = torch.load(ckpts[0], map_location="cpu", weights_only=False)
    assert ck["global_step"] == 5
    # the scheduled one is still there, at step 3
    assert [p.name for p in ckpts[0].parent.glob("*step=3*.ckpt")]


def test_last_checkpoint_left_alone_when_lightning_saved_the_final_step(tmp_path):
    """max_steps a multiple of every_n_train_steps: Lightning's own last.ckpt holds the final
    step, and `write_last_checkpoint` (run again after the fit) writes nothing."""
    from lightning.pytorch import Trainer
    from lightning.pytorch.callbacks import ModelCheckpoint

    from layerseg.segmentation.trained.cli import write_last_checkpoint
    from layerseg.segmentation.trained.data import FrameDataModule
    from layerseg.segmentation.trained.task import SegmentationTask

    cb = ModelCheckpoint(dirpath=tmp_path / "ck", save_last=True, save_top_k=1,
                         every_n_train_steps=2)
    kw = dict(spacing_mm=(0.1, 0.1), patch_size=(32, 32))
    task = SegmentationTask(channels=[4, 8, 16], **kw)
    dm = FrameDataModule(datasets=[], batch_size=2, num_workers=0, sim_frames=(4, 2, 2),
                         sim_shape=(80, 64), sim_depth_mm=8.0, sim_width_mm=6.4, **kw)
    tr = Trainer(max_steps=4, callbacks=[cb], logger=False, enable_progress_bar=False,
                 limit_val_batches=0, accelerator="cpu", devices=1)
    tr.fit(task, datamodule=dm)
    last = tmp_path / "ck" / "last.ckpt"
    before = last.stat().st_mtime_ns
    assert write_last_checkpoint(tr) == []
    assert last.stat().st_mtime_ns == before

import pytest


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory):
    """A 4-frame labelled dataset folder at 0.05 x 0.05 mm: subjects s0, s1 train, s2 val, s3
    test (the manifest's split column)."""
    from layerseg.io.dataset import DatasetWriter
    from layerseg.simulate import simulate_frame

    root = tmp_path_factory.mktemp("tiny_ds")
    with DatasetWriter(root) as w:
        for i, split in enumerate(["train", "train", "val", "test"]):
            s = simulate_frame(100 + i, region="cheek", shape=(160, 128), depth_mm=8.0,
                               width_mm=6.4, vary=False)
            w.add(s.frame, f"f{i}", subject_id=f"s{i}", label=s.labels, split=split)
    return root


@pytest.fixture(scope="session")
def tiny_fit():
    """``tiny_fit(root, *overrides, config="unet_small_cpu.yaml") -> Path``: ``layerseg fit``
    of a config from ``configs/`` for a few steps into `root` (no data workers, no progress
    bar, 8-32 channels), returning the newest checkpoint written there."""
    from pathlib import Path

    from layerseg.cli import main
    configs = Path(__file__).resolve().parents[3] / "configs"

    def fit(root, *overrides, config="unet_small_cpu.yaml"):
        assert main(["fit", "--config", str(configs / config), "--data.num_workers=0",
                     "--data.batch_size=2", "--model.channels=[8,16,32]",
                     "--trainer.enable_progress_bar=false", *overrides,
                     f"--trainer.default_root_dir={root}"]) == 0
        found = sorted(Path(root).rglob("*.ckpt"), key=lambda p: p.stat().st_mtime)
        assert found, "no checkpoint written"
        return found[-1]

    return fit


@pytest.fixture(scope="session")
def save_task():
    """``save_task(task, path) -> path``: a checkpoint of a `SegmentationTask` as layerseg ships
    them (weights and hyperparameters only, readable with ``weights_only=True``)."""
    import torch

    def save(task, path):
        torch.save({"state_dict": task.state_dict(), "hyper_parameters": dict(task.hparams)},
                   path)
        return path

    return save

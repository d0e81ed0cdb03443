import numpy as np
import pytest


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


@pytest.fixture(autouse=True)
def _private_config_dir(tmp_path_factory, monkeypatch):
    """Keep the per-installation de-identification salt out of the user's real config folder
    (every test: DICOM readers and the simulator's exporter key subjects with it)."""
    monkeypatch.setenv("LAYERSEG_CONFIG_DIR", str(tmp_path_factory.mktemp("layerseg_config")))
    monkeypatch.delenv("LAYERSEG_SALT", raising=False)
    monkeypatch.delenv("LAYERSEG_DEID_SALT", raising=False)


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory):
    """A checkpoint of a tiny UNet of the default model's kind (batch norm, one residual unit,
    whole-frame inference, 4-16 channels at 0.05 mm) with random weights and random batch-norm
    statistics (so folding them into the convolutions is exercised), saved as ``layerseg fit``
    saves one ({'state_dict', 'hyper_parameters'}). Imports torch only when used."""
    import torch

    from layerseg.segmentation.trained.task import SegmentationTask

    torch.manual_seed(3)
    task = SegmentationTask(net="UNet", channels=(4, 8, 16), norm="batch", num_res_units=1,
                            infer_mode="whole", spacing_mm=(0.05, 0.05), patch_size=(64, 64))
    g = torch.Generator().manual_seed(4)
    with torch.no_grad():
        for m in task.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                k = m.num_features
                m.running_mean.copy_(0.2 * torch.randn(k, generator=g))
                m.running_var.copy_(0.5 + torch.rand(k, generator=g))
                m.weight.copy_(0.5 + torch.rand(k, generator=g))
                m.bias.copy_(0.2 * torch.randn(k, generator=g))
    hp = {k: (list(v) if isinstance(v, tuple) else v) for k, v in dict(task.hparams).items()}
    path = tmp_path_factory.mktemp("tiny_ckpt") / "tiny.ckpt"
    torch.save({"state_dict": task.state_dict(), "hyper_parameters": hp}, path)
    return path


@pytest.fixture
def browser(tmp_path):
    """``browser(page, shot, size=(w, h)) -> dom``: headless Chromium renders the HTML file
    `page`, writes a screenshot to `shot` and returns the DOM as the browser built it (the
    tests that use it skip where ``chromium`` is not installed)."""
    import shutil
    import subprocess

    if shutil.which("chromium") is None:
        pytest.skip("chromium not installed")
    base = ["chromium", "--headless", "--disable-gpu", "--no-sandbox",
            f"--user-data-dir={tmp_path / 'chromium-profile'}"]

    def render(page, shot, size=(1200, 2000)):
        r = subprocess.run(base + [f"--screenshot={shot}", f"--window-size={size[0]},{size[1]}",
                                   page.as_uri()], capture_output=True, timeout=120)
        assert shot.is_file(), r.stderr.decode(errors="replace")[-2000:]
        return subprocess.run(base + ["--dump-dom", page.as_uri()], capture_output=True,
                              timeout=120).stdout.decode()

    return render

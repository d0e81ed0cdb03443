"""SegmentationTask options: the network's norm and residual units, whole-frame inference, the
learning-rate schedule."""

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("monai")

from layerseg.errors import ConfigError  # noqa: E402
from layerseg.segmentation.trained.task import (SegmentationTask,  # noqa: E402
                                                whole_frame_inference)


def _norm_layers(net, kind):
    return [m for m in net.modules() if isinstance(m, kind)]


def test_norm_and_residual_units_reach_the_network():
    b = SegmentationTask(channels=(4, 8, 16), norm="batch", num_res_units=1)
    i = SegmentationTask(channels=(4, 8, 16), norm="instance", num_res_units=2)
    assert _norm_layers(b.net, torch.nn.BatchNorm2d) and not _norm_layers(b.net, torch.nn.InstanceNorm2d)
    assert _norm_layers(i.net, torch.nn.InstanceNorm2d) and not _norm_layers(i.net, torch.nn.BatchNorm2d)
    assert sum(p.numel() for p in i.net.parameters()) > sum(p.numel() for p in b.net.parameters())
    for bad in (dict(norm="group"), dict(num_res_units=-1), dict(infer_mode="tiles"),
                dict(lr_schedule="step")):
        with pytest.raises(ConfigError):
            SegmentationTask(channels=(4, 8, 16), **bad)


def test_whole_frame_inference_pads_to_the_multiple_and_crops_back():
    torch.manual_seed(0)
    task = SegmentationTask(channels=(4, 8, 16, 32), norm="batch", num_res_units=1,
                            infer_mode="whole", patch_size=(32, 32)).eval()
    assert task.size_multiple == 8
    x = torch.rand(2, 1, 37, 45)
    seen = []

    def predictor(t):
        seen.append(tuple(t.shape))
        return task.net(t)

    with torch.inference_mode():
        out = task.infer(x, predictor=predictor)
        # one pass over the frame padded (edge values) to 40 x 48, cropped back
        assert seen == [(2, 1, 40, 48)] and out.shape == (2, 8, 37, 45)
        ref = task.net(torch.nn.functional.pad(x, (0, 3, 0, 3), mode="replicate"))
        torch.testing.assert_close(out, ref[..., :37, :45])
        # a frame already at the multiple goes through untouched
        y = torch.rand(1, 1, 40, 48)
        torch.testing.assert_close(whole_frame_inference(y, task.net, 8), task.net(y))
    # sliding mode: windows of the patch size
    task2 = SegmentationTask(channels=(4, 8, 16, 32), patch_size=(32, 32), sw_batch_size=64)
    seen.clear()
    with torch.inference_mode():
        task2.infer(x, predictor=predictor)
    assert seen and all(s[-2:] == (32, 32) for s in seen)


def test_cosine_schedule_decays_to_zero_over_max_steps(tmp_path):
    from lightning.pytorch import Trainer

    from layerseg.segmentation.trained.data import FrameDataModule

    dm = FrameDataModule(spacing_mm=(0.1, 0.1), patch_size=(32, 32), batch_size=2,
                         sim_frames=(4, 1, 1), sim_shape=(80, 64), sim_depth_mm=8.0,
                         sim_width_mm=6.4)
    task = SegmentationTask(channels=(4, 8, 16), patch_size=(32, 32), spacing_mm=(0.1, 0.1),
                            lr=0.01, lr_schedule="cosine", decode_val=False)
    lrs = []

    class Rec(__import__("lightning").pytorch.Callback):
        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            lrs.append(trainer.optimizers[0].param_groups[0]["lr"])

    tr = Trainer(max_steps=6, accelerator="cpu", logger=False, enable_checkpointing=False,
                 enable_progress_bar=False, enable_model_summary=False, limit_val_batches=0,
                 callbacks=[Rec()], default_root_dir=tmp_path)
    tr.fit(task, datamodule=dm)
    assert lrs[0] == pytest.approx(0.01)
    assert all(a > b for a, b in zip(lrs, lrs[1:]))
    assert tr.optimizers[0].param_groups[0]["lr"] == pytest.approx(0.0, abs=1e-12)


def test_init_from_starts_a_fit_from_the_checkpoints_weights(tmp_path, save_task):
    torch.manual_seed(1)
    src = SegmentationTask(channels=(4, 8, 16), norm="batch", num_res_units=1)
    with torch.no_grad():                         # batch-norm statistics travel too
        for m in src.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-1, 1)
    ck = save_task(src, tmp_path / "stage1.ckpt")
    torch.manual_seed(2)
    task = SegmentationTask(channels=(4, 8, 16), norm="batch", num_res_units=1,
                            init_from=str(ck), lr=1e-4)
    differs = lambda: any(not torch.equal(a, b) for a, b in  # noqa: E731
                          zip(task.state_dict().values(), src.state_dict().values()))
    assert differs()
    task.setup("validate")                        # only fitting starts from it
    assert differs()
    task.setup("fit")
    assert not differs()
    assert task.hparams.lr == 1e-4 and task.hparams.init_from == str(ck)
    # a network of another shape is refused, naming the file and the setting
    other = SegmentationTask(channels=(4, 8, 32), norm="batch", num_res_units=1,
                             init_from=str(ck))
    with pytest.raises(ConfigError, match="channels") as e:
        other.setup("fit")
    assert str(ck) in str(e.value)
    with pytest.raises(ConfigError, match="does not exist"):
        SegmentationTask(channels=(4, 8, 16), init_from=str(tmp_path / "no.ckpt")).setup("fit")


def test_a_fine_tuned_checkpoint_fits_on_from_its_own_weights(tmp_path, save_task):
    # a checkpoint made by a fine-tune records where it started (init_from); rebuilt from the
    # file, its task holds the file's weights and fitting it further does not go back there
    from layerseg.segmentation.trained.predict import load_task

    torch.manual_seed(3)
    tuned = SegmentationTask(channels=(4, 8, 16), norm="batch", num_res_units=1,
                             init_from=str(tmp_path / "stage1_gone.ckpt"))
    ck = save_task(tuned, tmp_path / "stage2.ckpt")
    task = load_task(ck).train()
    task.setup("fit")
    for a, b in zip(task.state_dict().values(), tuned.state_dict().values()):
        assert torch.equal(a, b)
    assert torch.load(ck, weights_only=True)["hyper_parameters"]["init_from"].endswith(
        "stage1_gone.ckpt")

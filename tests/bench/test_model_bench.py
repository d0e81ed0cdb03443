"""The model suite of ``layerseg bench speed`` (a trained model exported and eager, alone and end
to end, beside the classical segmenter): it runs on a tiny checkpoint, its figures and ratios
agree with its timings, and its flat ratio keys and printed table come out."""

import json

import pytest

pytest.importorskip("torch")

from layerseg.bench.model import CASES, format_model_benchmark, run_model_benchmark  # noqa: E402
from layerseg.bench.ratios import flat_ratios  # noqa: E402
from layerseg.cli import main  # noqa: E402
from layerseg.errors import ConfigError, MissingDependencyError  # noqa: E402


@pytest.fixture(scope="module")
def result(tiny_checkpoint):
    return run_model_benchmark(str(tiny_checkpoint), shape=(96, 128), repeat=1)


def test_model_benchmark_reports_every_case(result, tiny_checkpoint):
    r = result
    assert r["checkpoint"] == str(tiny_checkpoint) and r["shape"] == [96, 128]
    assert r["backend"] in ("openvino", "onnxruntime", "torchscript") and r["threads"] >= 1
    assert r["labels_identical"] is True
    fps, sec = r["frames_per_s"], r["seconds"]
    assert set(fps) == set(sec) == set(CASES)
    for k in CASES:
        assert sec[k] > 0 and fps[k] == pytest.approx(1 / sec[k])
    assert r["exported_vs_eager"]["net"] == pytest.approx(fps["net_exported"] / fps["net_eager"])
    assert r["segment_vs_classical"]["exported"] == pytest.approx(
        fps["segment_exported"] / fps["classical"])
    table = format_model_benchmark(r)
    assert "network alone (96 x 128)" in table and "end to end" in table
    assert "classical segmenter" in table
    # every exported backend that builds here, beside the chosen one and eager
    from importlib.util import find_spec
    by = r["net_frames_per_s_by_backend"]
    assert by[r["backend"]] == fps["net_exported"] and by["eager"] == fps["net_eager"]
    assert "torchscript" in by and all(x > 0 for x in by.values())
    for name, mods in (("openvino", ("openvino", "onnx")),
                       ("onnxruntime", ("onnxruntime", "onnx"))):
        assert (name in by) == all(find_spec(m) for m in mods)
    assert "network alone by backend" in table and "torchscript" in table


def test_model_flat_ratio_keys(result):
    ratios = flat_ratios({"suites": {"model": {"status": "ok", "results": result}}})
    fps = result["frames_per_s"]
    assert ratios["model.net_exported.vs_eager.speedup"] == pytest.approx(
        fps["net_exported"] / fps["net_eager"])
    assert ratios["model.net_exported.vs_eager.96x128.speedup"] == \
        ratios["model.net_exported.vs_eager.speedup"]
    assert {"model.segment_exported.vs_eager.speedup", "model.segment_exported.vs_classical"
            ".speedup", "model.segment_eager.vs_classical.speedup"} <= set(ratios)


def test_model_suite_needs_a_trained_model(monkeypatch):
    with pytest.raises(ConfigError, match="trained model"):
        run_model_benchmark("classical")
    # an installation without the default model's file: the suite is 'not available', not failed
    import layerseg.segmentation as seg

    def missing(name):
        raise ConfigError(f"the shipped {name!r} model is missing from this installation")
    monkeypatch.setattr(seg, "model_path", missing)
    with pytest.raises(MissingDependencyError, match="--model"):
        run_model_benchmark("default")


def test_bench_speed_model_suite_cli(tiny_checkpoint, tmp_path, capsys):
    out = tmp_path / "speed.json"
    assert main(["bench", "speed", "--quick", "--suite", "model", "--model",
                 str(tiny_checkpoint), "--json", str(out)]) == 0
    got = json.loads(out.read_text())
    assert list(got["suites"]) == ["model"] and got["suites"]["model"]["status"] == "ok"
    assert "model.net_exported.vs_eager.speedup" in got["ratios"]
    assert "| network alone (128 x 128) |" in capsys.readouterr().out
    assert "model.segment_exported.vs_classical.speedup" in out.with_suffix(".md").read_text()

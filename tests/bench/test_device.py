"""The device suite (`layerseg.bench.device`): the network timed by precision, batch and
compilation on a torch device, its FLOPs counted, the flat keys, and a clear refusal of a device
that torch does not have."""

import json

import pytest
import torch

from layerseg.bench.device import format_device_benchmark, run_device_benchmark
from layerseg.bench.ratios import flat_ratios
from layerseg.errors import ConfigError


@pytest.fixture(scope="module")
def cpu_run():
    return run_device_benchmark("default", "cpu", shape=(64, 64), batches=(1, 2),
                                precisions=("fp32", "bf16"), min_run_time=0.02)


def test_cpu_run_times_every_precision_and_batch(cpu_run):
    res = cpu_run
    assert res["device"] == "cpu" and res["device_name"] and res["torch"] == torch.__version__
    got = {(x["precision"], x["batch"], x["compiled"]) for x in res["results"]}
    assert got == {("fp32", 1, False), ("fp32", 2, False), ("bf16", 1, False), ("bf16", 2, False)}
    for x in res["results"]:
        assert x["frames_per_s"] == pytest.approx(x["batch"] / x["seconds_per_batch"])
        assert x["fraction_of_matmul"] == pytest.approx(
            res["flops_per_frame"] * x["frames_per_s"] / res["matmul_flops_per_s"][x["precision"]])
    md = format_device_benchmark(res)
    assert "| fp32 | no | 2 |" in md and "GFLOP per frame" in md
    json.dumps(res)                                     # JSON as the command writes it


def test_flops_per_frame_grow_with_the_pixels(cpu_run):
    # a fully convolutional network: four times the pixels, four times the operations
    big = run_device_benchmark("default", "cpu", shape=(128, 128), batches=(1,),
                               precisions=("fp32",), min_run_time=0.02)
    assert big["flops_per_frame"] == pytest.approx(4 * cpu_run["flops_per_frame"], rel=1e-6)
    assert cpu_run["flops_per_frame"] > 64 * 64 * 1000     # a UNet: thousands per pixel


def test_flat_keys_of_the_device_suite(cpu_run):
    flat = flat_ratios({"suites": {"device": {"status": "ok", "results": cpu_run}}})
    fps = {(x["precision"], x["batch"]): x["frames_per_s"] for x in cpu_run["results"]}
    assert flat["device.cpu.bf16.vs_fp32.b2.speedup"] == pytest.approx(
        fps[("bf16", 2)] / fps[("fp32", 2)])
    assert flat["device.cpu.fp32.b2.vs_b1.speedup"] == pytest.approx(
        fps[("fp32", 2)] / fps[("fp32", 1)])


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_without_a_gpu_is_refused_clearly(tmp_path):
    with pytest.raises(ConfigError, match="sees no CUDA device"):
        run_device_benchmark("default", "cuda", shape=(32, 32))
    from layerseg.cli import main
    out = tmp_path / "s.json"
    assert main(["bench", "speed", "--suite", "device", "--device", "cuda", "--json",
                 str(out)]) == 1
    res = json.loads(out.read_text())
    assert res["suites"]["device"]["status"] == "failed"
    assert "sees no CUDA device" in res["suites"]["device"]["error"]


def test_unknown_device_or_precision_is_refused():
    with pytest.raises(ConfigError, match="not a torch device|'cpu' or 'cuda'"):
        run_device_benchmark("default", "tpu")
    with pytest.raises(ConfigError, match="unknown precision"):
        run_device_benchmark("default", "cpu", precisions=("fp8",))


@pytest.mark.slow
def test_compiled_rows_are_compiled_graphs_not_an_eager_fallback():
    # torch.compile on the CPU (a C++ compiler, a minute or two): every precision's compiled
    # copy gets its own graphs even where dynamo's recompile limit is low; past that limit
    # dynamo would run the eager network without an error and the 'compiled' rows would lie
    import torch._dynamo
    import torch._dynamo.config as cfg
    from torch._dynamo.utils import counters

    torch._dynamo.reset()
    before = counters["stats"]["unique_graphs"]
    name = "recompile_limit" if hasattr(cfg, "recompile_limit") else "cache_size_limit"
    with cfg.patch(**{name: 1}):
        res = run_device_benchmark("default", "cpu", shape=(32, 32), batches=(1, 2, 3),
                                   precisions=("fp32", "bf16"), compile_modes=(False, True),
                                   min_run_time=0.02)
    got = {(x["precision"], x["batch"], x["compiled"]) for x in res["results"]}
    assert got == {(p, b, c) for p in ("fp32", "bf16") for b in (1, 2, 3) for c in (False, True)}
    assert not res["skipped"]
    # batch 1, then a graph for the other batch sizes, in each precision
    assert counters["stats"]["unique_graphs"] - before >= 4

"""A trained model's network on one torch device, by precision, batch size and compilation: the
code behind the ``device`` suite of ``layerseg bench speed --device cpu|cuda``.

For each precision (fp32; bf16 and fp16 under `torch.autocast`), batch size and compilation
(eager; `torch.compile` where asked) it times the network alone on random frames of one size
with `torch.utils.benchmark` (which synchronises CUDA around each measurement) and reports
frames/s, and the share of the device's dense matrix-multiply rate that this reaches: the
network's floating-point operations per frame (counted by `torch.utils.flop_counter`, two per
multiply-add) times frames/s, over the FLOP/s of a large square matrix product in the same
precision timed in the same run on the same device. A measured rate rather than a data-sheet
peak: it names what this device, driver and build actually reach, on any device. The device
(``torch.cuda.get_device_name`` or the CPU's model name) and torch's version are recorded.

Defaults: on CUDA, batches 1-256 and eager and compiled; on a CPU, batches 1 and 4, eager only
(`torch.compile` on a CPU needs a C++ compiler and minutes of compilation; ask for it with
``compile_modes=(False, True)``). A precision or compilation the device or build cannot run is
left out and named in ``skipped`` with the reason.
"""

from __future__ import annotations

import copy
import platform

__all__ = ["run_device_benchmark", "format_device_benchmark", "PRECISIONS"]

PRECISIONS = ("fp32", "bf16", "fp16")
"""Precisions timed: fp32 as the network is, bf16 and fp16 under `torch.autocast`."""

_CUDA_BATCHES = (1, 8, 32, 64, 128, 256)
_CPU_BATCHES = (1, 4)


def _dtype(precision: str):
    """The torch dtype of one of `PRECISIONS`."""
    import torch

    return {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]


def _device_name(dev) -> str:
    import torch

    if dev.type == "cuda":
        return torch.cuda.get_device_name(dev)
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _resolve_device(device: str):
    import torch

    from ..errors import ConfigError

    try:
        dev = torch.device(device)
    except RuntimeError as e:
        raise ConfigError(f"--device {device!r}: not a torch device ({e})") from None
    if dev.type not in ("cpu", "cuda"):
        raise ConfigError(f"--device {device!r}: the device suite runs on 'cpu' or 'cuda'")
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"--device {device!r}: torch {torch.__version__} sees no CUDA "
                              "device (a CPU build of torch, or no GPU/driver on this machine)")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ConfigError(f"--device {device!r}: only {torch.cuda.device_count()} CUDA "
                              "device(s)")
    return dev


def _seconds(fn, min_run_time: float) -> float:
    """Median seconds of one call of `fn` (`torch.utils.benchmark`, blocks of calls)."""
    import torch
    from torch.utils import benchmark

    t = benchmark.Timer(stmt="fn()", globals={"fn": fn}, num_threads=torch.get_num_threads())
    return float(t.blocked_autorange(min_run_time=min_run_time).median)


def _recompile_room(n: int):
    """A context raising torch._dynamo's per-function recompile limit to at least `n` for the
    run: every precision's compiled copy and batch size may add a graph, and past the limit
    dynamo falls back to eager without an error, so the 'compiled' rows would time the eager
    network."""
    import torch._dynamo.config as cfg

    name = "recompile_limit" if hasattr(cfg, "recompile_limit") else "cache_size_limit"
    return cfg.patch(**{name: max(int(n), int(getattr(cfg, name)))})


def _matmul_flops(dev, precision: str, min_run_time: float) -> float:
    """FLOP/s of a square matrix product in `precision` on `dev` (2 n^3 per product)."""
    import torch

    n = 4096 if dev.type == "cuda" else 1024
    dtype = _dtype(precision)
    g = torch.Generator(device="cpu").manual_seed(0)
    a = torch.rand(n, n, generator=g).to(dev, dtype)
    b = torch.rand(n, n, generator=g).to(dev, dtype)
    s = _seconds(lambda: torch.mm(a, b), min_run_time)
    return 2.0 * n ** 3 / s


def run_device_benchmark(model: str = "default", device: str = "cpu",
                         shape: tuple[int, int] = (512, 512), batches=None, precisions=None,
                         compile_modes=None, min_run_time: float = 0.5, seed: int = 7) -> dict:
    """Frames/s of a trained model's network on `device` by precision, batch and compilation.

    Parameters
    ----------
    model : str or path
        A checkpoint path or a model name (`layerseg.segmentation.check_model`).
    device : str
        ``cpu``, ``cuda`` or ``cuda:N``.
    shape : (int, int)
        Frame size (rows, cols) the network runs on.
    batches : sequence of int, optional
        Batch sizes (default 1-256 on CUDA, 1 and 4 on a CPU).
    precisions : sequence of str, optional
        Of `PRECISIONS` (default all three).
    compile_modes : sequence of bool, optional
        False (eager) and/or True (`torch.compile`); default both on CUDA, eager on a CPU.
    min_run_time : float
        Seconds each measurement runs at least (`torch.utils.benchmark`'s blocked autorange).
    seed : int
        Seed of the random input.

    Returns
    -------
    dict
        ``model``, ``device`` (as given), ``device_name``, ``torch``, ``shape``,
        ``flops_per_frame``, ``matmul_flops_per_s`` (precision -> FLOP/s), ``results``: a list
        of {``precision``, ``batch``, ``compiled``, ``seconds_per_batch``, ``frames_per_s``,
        ``fraction_of_matmul``}, and ``skipped`` (what could not run -> why).

    Raises
    ------
    ConfigError
        A device torch does not have (``cuda`` on a machine without one), not a trained model,
        an unknown precision.
    """
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from ..errors import ConfigError
    from ..segmentation import check_model

    dev = _resolve_device(device)
    seg = check_model(model)
    if seg is None:
        raise ConfigError("the device suite times a trained model; give a checkpoint path, not "
                          "'classical'")
    precisions = tuple(PRECISIONS if precisions is None else precisions)
    bad = [p for p in precisions if p not in PRECISIONS]
    if bad:
        raise ConfigError(f"unknown precision(s) {bad}; choose from {list(PRECISIONS)}")
    cuda = dev.type == "cuda"
    batches = tuple(int(b) for b in (batches or (_CUDA_BATCHES if cuda else _CPU_BATCHES)))
    compile_modes = tuple(bool(c) for c in (compile_modes or ((False, True) if cuda
                                                              else (False,))))
    net = copy.deepcopy(seg.task.net).eval()
    cin = int(seg.task.hparams.in_channels)
    one = torch.rand(1, cin, *shape, generator=torch.Generator().manual_seed(seed))
    with FlopCounterMode(display=False) as fc, torch.inference_mode():
        net(one)
    flops = float(fc.get_total_flops())
    net = net.to(dev)
    skipped: dict[str, str] = {}
    peak: dict[str, float] = {}
    results = []
    with _recompile_room(len(precisions) * (len(batches) + 2)):
        for prec in precisions:
            try:
                peak[prec] = _matmul_flops(dev, prec, min_run_time)
            except Exception as e:  # noqa: BLE001 - a precision the device cannot multiply in
                skipped[prec] = f"matrix product: {type(e).__name__}: {e}"
                continue
            nets = {False: net}
            if True in compile_modes:
                try:                        # one compiled copy per precision (autocast is guarded)
                    nets[True] = torch.compile(copy.deepcopy(net))
                except Exception as e:  # noqa: BLE001 - a build without a compiler backend
                    skipped[f"{prec} compiled"] = f"torch.compile: {type(e).__name__}: {e}"
            for compiled in compile_modes:
                if compiled not in nets:
                    continue
                m = nets[compiled]
                for b in batches:
                    x = torch.rand(b, cin, *shape, generator=torch.Generator().manual_seed(seed)
                                   ).to(dev)

                    def run(m=m, x=x, prec=prec):
                        with torch.inference_mode():
                            if prec == "fp32":
                                return m(x)
                            with torch.autocast(dev.type, dtype=_dtype(prec)):
                                return m(x)
                    key = f"{prec}{' compiled' if compiled else ''} batch {b}"
                    try:
                        run()                       # first run: compilation, cuDNN's choice
                        s = _seconds(run, min_run_time)
                    except Exception as e:  # noqa: BLE001 - e.g. fp16 autocast on an old CPU build
                        skipped[key] = f"{type(e).__name__}: {e}"
                        if cuda:
                            torch.cuda.empty_cache()
                        continue
                    fps = b / s
                    results.append({"precision": prec, "batch": b, "compiled": compiled,
                                    "seconds_per_batch": s, "frames_per_s": fps,
                                    "fraction_of_matmul": flops * fps / peak[prec]})
                    del x
    return {"model": str(model), "device": str(device), "device_name": _device_name(dev),
            "torch": torch.__version__, "shape": list(shape), "flops_per_frame": flops,
            "matmul_flops_per_s": peak, "results": results, "skipped": skipped}


def format_device_benchmark(res: dict) -> str:
    """A Markdown table of `run_device_benchmark`'s result."""
    r, c = res["shape"]
    lines = [f"model {res['model']} on {res['device']} ({res['device_name']}, torch "
             f"{res['torch']}): network alone, {r} x {c} frames, "
             f"{res['flops_per_frame'] / 1e9:.2f} GFLOP per frame",
             "", "| precision | compiled | batch | frames/s | share of the matmul rate |",
             "|---|---|---|---|---|"]
    for x in res["results"]:
        lines.append(f"| {x['precision']} | {'yes' if x['compiled'] else 'no'} | {x['batch']} "
                     f"| {x['frames_per_s']:.1f} | {100 * x['fraction_of_matmul']:.1f} % |")
    lines.append("")
    lines.append("dense matrix product here: " + ", ".join(
        f"{p} {v / 1e9:.3g} GFLOP/s" for p, v in res["matmul_flops_per_s"].items()))
    if any(x["fraction_of_matmul"] > 1 for x in res["results"]):
        lines.append("(a share above 100 %: the device multiplies matrices in that precision "
                     "more slowly than it runs the network, as where it has no native support "
                     "for it)")
    for name, why in res.get("skipped", {}).items():
        lines.append(f"\n{name} not timed: {why}")
    return "\n".join(lines)

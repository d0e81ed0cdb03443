"""Fast CPU inference of a trained network: an exported graph, the eager network as fallback.

`export_task` turns a loaded `SegmentationTask` into a `Predictor`, a callable that runs the
network on a (B, C, rows, cols) tensor and that `SegmentationTask.infer(x, predictor=...)` takes
in place of the eager network. Backends, in the order ``backend='auto'`` tries them:

``openvino``
    The same in-memory ONNX graph read by OpenVINO's CPU plugin, compiled for latency in float32
    (``INFERENCE_PRECISION_HINT`` f32: on CPUs with bf16 or AMX units OpenVINO would otherwise
    lower the precision) on `threads` threads, one frame at a time (so a frame's logits do not
    depend on the batch it comes in: another batch size blocks the kernels differently). A
    compiled model of fixed input shape is kept for each of the last `OPENVINO_SHAPES` frame
    shapes seen (compiling one takes about 0.1 s; a fixed shape runs about a quarter faster than
    the dynamic graph; on the CPU a batch gains little). Its answers are the same run to run and
    for any batch; on one thread they differ from those on two or more in the last bits (up to
    1e-5 in logits of order 10: OpenVINO picks another kernel), which left every Dice of the 224
    held-out frames tried unchanged but shows in scores written at full precision. Needs the
    optional packages openvino and onnx (``pip install 'layerseg[fast]'``).
``onnxruntime``
    The network exported to ONNX in memory (``torch.onnx.export``, batch, rows and cols left
    free, batch norm folded into the convolutions) and run by an ONNX Runtime CPU session with
    all graph optimisations and *no spinning* worker threads. Needs the optional packages
    onnxruntime and onnx (``pip install 'layerseg[fast]'``).
``torchscript``
    ``torch.jit.trace`` + ``torch.jit.freeze`` (batch norm folded, weights constant) in the
    channels-last layout. ``torch.jit.optimize_for_inference`` is not applied: its oneDNN
    layout conversions made the 8-128-channel UNet 2-3 times slower here.
``eager``
    The network itself (the fallback).

Every export is checked before it is used: on a random input of another size than the one
traced (so a graph that fixed the frame size is caught), its output must match the eager
network's within `CHECK_TOLERANCE`; an export that raises or disagrees is skipped with one
warning naming the reason, and the next backend is tried. Nothing is written to disk.

Why OpenVINO first (session 19). The shipped default model, network alone on a 512 x 512 input,
2 threads, the 2-core development machine (AVX2, no AVX-512), best of interleaved runs: idle, eager
16.9, ONNX Runtime 25.5, OpenVINO 39.2 dynamic and 45.8 at a fixed shape frames/s; with a busy loop
on one of the two cores, eager 5.4, ONNX Runtime 20.0, OpenVINO 28.2 and 33.1. Its logits agree
with the eager network's within 3e-5 (logits of order 10), as ONNX Runtime's do. Through
``layerseg bench speed --suite model`` (which times every backend that builds), the frozen
TorchScript graph was level with OpenVINO on the quiet machine (36 against 31-35 frames/s) and
behind it with a busy core (19.0 against 21.2); OpenVINO is first for that.

Why ONNX Runtime before TorchScript. Measured at 512 x 512 on the 2-core development machine while
a model was training on the same cores (load average about 2.5, so every figure is noisy and lower
than an idle machine's), the default 8-128-channel UNet (one residual unit, batch norm) ran, as
best frames/s over interleaved runs: on 2 threads, eager 4.7, TorchScript frozen 7.6 (channels-last
10.0), ONNX Runtime 14.5; on 1 thread, eager 17.3, frozen 16.7 (channels-last 23.1), ONNX Runtime
21.1. On a loaded machine torch's OpenMP threads spin-wait for each other, and when the other load
takes one core away they stall (eager fell to about 1 frame/s on 2 threads at times); ONNX
Runtime's own thread pool, with spinning off, degrades gracefully instead. On 1 thread the backends
are close, as they should be on an idle machine (the network is bound by its convolutions; not
measured here). The outputs agree within about 4e-7 (logits of order 1), batch norm folding
included.

Threads. `inference_threads` picks the count: the ``threads`` argument, else the environment
variable ``LAYERSEG_THREADS``, else the user's own torch setting when there is one
(``OMP_NUM_THREADS`` or ``MKL_NUM_THREADS`` in the environment, or a ``torch.set_num_threads``
call: torch's count differs from its start-up count; when torch was imported before layerseg's
trained-model code, its count is kept as it is), else the CPUs this process may run on
(``os.sched_getaffinity``). An ONNX Runtime session or OpenVINO compiled model gets it as its own
pool size; the torch backends set torch's intra-op threads to it for the duration of each call only
and put back the previous count, so a user's setting is never overwritten.
"""

from __future__ import annotations

import copy
import io
import logging
import os
import threading
import warnings
from collections import OrderedDict
from contextlib import contextmanager
from typing import Literal

import numpy as np
import torch

from ...errors import ConfigError
from . import _TORCH_IMPORTED_BEFORE

# torch's intra-op thread count before anyone could change it: known only when this package was
# the first to import torch in the process
_TORCH_START_THREADS = None if _TORCH_IMPORTED_BEFORE else torch.get_num_threads()

__all__ = ["export_task", "Predictor", "inference_threads", "BACKENDS", "CHECK_TOLERANCE",
           "THREADS_ENV", "resolve_device", "device_predictor"]

log = logging.getLogger(__name__)

BACKENDS = ("openvino", "onnxruntime", "torchscript", "eager")
"""Backends `export_task` can build, fastest first (``auto`` tries them in this order)."""

Backend = Literal["auto", "openvino", "onnxruntime", "torchscript", "eager"]

OPENVINO_SHAPES = 4
"""Input shapes for which the ``openvino`` backend keeps a compiled fixed-shape model (least
recently used dropped first)."""

CHECK_TOLERANCE = 1e-4
"""Largest difference allowed between an exported graph's logits and the eager network's, as a
fraction of the largest eager logit (at least 1)."""

THREADS_ENV = "LAYERSEG_THREADS"
"""Environment variable that sets the inference thread count (see `inference_threads`)."""

_USER_THREAD_ENVS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")


def _machine_threads() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):   # not on Linux
        return max(1, os.cpu_count() or 1)


def _user_torch_threads() -> int | None:
    """torch's thread count when the user chose it (environment or ``torch.set_num_threads``;
    assumed chosen when torch was imported before layerseg, as it cannot be told), else None."""
    n = torch.get_num_threads()
    if any(os.environ.get(v, "").strip() for v in _USER_THREAD_ENVS):
        return n
    if _TORCH_START_THREADS is None or n != _TORCH_START_THREADS:
        return n
    return None


def inference_threads(threads: int | None = None) -> int:
    """The number of CPU threads a network runs on.

    Parameters
    ----------
    threads : int, optional
        Wins when given.

    Returns
    -------
    int
        `threads`; else ``LAYERSEG_THREADS``; else the user's torch setting (``OMP_NUM_THREADS``
        / ``MKL_NUM_THREADS``, or ``torch.set_num_threads``, also when torch was imported
        before layerseg); else the CPUs this process may run on (``os.sched_getaffinity``).

    Raises
    ------
    ConfigError
        `threads` or ``LAYERSEG_THREADS`` is not a positive integer.
    """
    from ...errors import ConfigError
    if threads is None:
        env = os.environ.get(THREADS_ENV, "").strip()
        if env:
            try:
                threads = int(env)
            except ValueError:
                raise ConfigError(f"{THREADS_ENV} must be a positive integer, got {env!r}") \
                    from None
            if threads < 1:
                raise ConfigError(f"{THREADS_ENV} must be a positive integer, got {env!r}")
        else:
            threads = _user_torch_threads() or _machine_threads()
    if isinstance(threads, bool) or int(threads) != threads or int(threads) < 1:
        raise ConfigError(f"threads must be a positive integer, got {threads!r}")
    return int(threads)


@contextmanager
def torch_threads(n: int):
    """Run the block with torch's intra-op threads set to `n`, the previous count put back."""
    old = torch.get_num_threads()
    if n == old:
        yield
        return
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


class Predictor:
    """A network ready for CPU inference: ``predictor(x)`` maps a float32 tensor (B, C, rows,
    cols) to logits (B, K, rows, cols), rows and cols of any size the network takes.

    Attributes
    ----------
    backend : {'openvino', 'onnxruntime', 'torchscript', 'eager'}
    threads : int
        CPU threads each call runs on.
    skipped : dict
        Faster backends that were not used -> why (not installed, export failed, disagreed).
    """

    def __init__(self, backend: str, fn, threads: int, skipped: dict[str, str] | None = None):
        self.backend = backend
        self.threads = int(threads)
        self.skipped = dict(skipped or {})
        self._fn = fn

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self._fn(x)

    def __repr__(self) -> str:
        return f"Predictor(backend={self.backend!r}, threads={self.threads})"


# --------------------------------------------------------------------------- backends
def _eager(net: torch.nn.Module, threads: int):
    def run(x):
        with torch_threads(threads), torch.inference_mode():
            return net(x)
    return run


def _torchscript(net: torch.nn.Module, example: torch.Tensor, threads: int):
    cl = torch.channels_last
    m = copy.deepcopy(net).eval().to(memory_format=cl)   # the task's own network is left as is
    with torch_threads(threads), torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")   # tracer and deprecation warnings
        graph = torch.jit.freeze(torch.jit.trace(m, example.contiguous(memory_format=cl),
                                                 check_trace=False).eval())

    def run(x):
        with torch_threads(threads), torch.inference_mode():
            return graph(x.contiguous(memory_format=cl))
    return run


def _onnx_bytes(net: torch.nn.Module, example: torch.Tensor) -> bytes:
    """The network as an ONNX model in memory: batch, rows and cols left free, opset 17,
    constants folded."""
    import onnx  # noqa: F401   (ImportError: not installed; torch.onnx.export needs it)

    buf = io.BytesIO()
    axes = {0: "batch", 2: "rows", 3: "cols"}
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")   # the exporter's deprecation and tracer warnings
        torch.onnx.export(net.eval(), (example,), buf, input_names=["image"],
                          output_names=["logits"], dynamic_axes={"image": axes, "logits": axes},
                          opset_version=17, do_constant_folding=True, dynamo=False)
    return buf.getvalue()


def _onnxruntime(net: torch.nn.Module, example: torch.Tensor, threads: int):
    import onnxruntime as ort   # ImportError: not installed

    model = _onnx_bytes(net, example)
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.log_severity_level = 3
    # idle workers sleep instead of spinning: on a busy machine spinning threads steal the
    # cores the others wait for
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    sess = ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])

    def run(x):
        a = np.ascontiguousarray(x.detach().cpu().numpy(), dtype=np.float32)
        return torch.from_numpy(sess.run(["logits"], {"image": a})[0])
    return run


def _openvino(net: torch.nn.Module, example: torch.Tensor, threads: int):
    import openvino as ov   # ImportError: not installed

    core = ov.Core()
    model = core.read_model(_onnx_bytes(net, example))
    config = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_NUM_THREADS": int(threads),
              "INFERENCE_PRECISION_HINT": "f32"}
    n_out = model.output(0).get_partial_shape()[1].get_length()   # logit channels
    compiled: OrderedDict[tuple, object] = OrderedDict()   # input shape -> compiled model
    lock = threading.Lock()   # a compiled model's default request is not safe to share

    def one(a):
        key = a.shape
        cm = compiled.pop(key, None)
        if cm is None:
            fixed = model.clone()
            fixed.reshape(list(key))
            cm = core.compile_model(fixed, "CPU", config)
        compiled[key] = cm
        while len(compiled) > OPENVINO_SHAPES:
            compiled.popitem(last=False)
        return np.array(cm(a)[cm.output(0)], dtype=np.float32, copy=True)

    def run(x):
        a = np.ascontiguousarray(x.detach().cpu().numpy(), dtype=np.float32)
        # frame by frame: a compiled model's kernels block differently for another batch size,
        # and a frame's logits must not depend on the frames batched with it
        if not len(a):
            return torch.empty((0, n_out, *a.shape[2:]), dtype=torch.float32)
        with lock:
            return torch.from_numpy(np.concatenate([one(a[i:i + 1]) for i in range(len(a))]))
    return run


def _build(name: str, net: torch.nn.Module, example: torch.Tensor, threads: int):
    """Backend `name`'s run function (looked up at call time, so tests can replace one)."""
    return {"openvino": _openvino, "onnxruntime": _onnxruntime,
            "torchscript": _torchscript}[name](net, example, threads)


def _check(fn, net, x) -> str | None:
    """None when `fn` gives the eager network's logits on `x`, else why not."""
    with torch.inference_mode():
        ref = net(x).float()
        got = fn(x).float()
    if tuple(got.shape) != tuple(ref.shape):
        return f"output shape {tuple(got.shape)} instead of {tuple(ref.shape)}"
    err = float((got - ref).abs().max())
    tol = CHECK_TOLERANCE * max(1.0, float(ref.abs().max()))
    if not err <= tol:
        return f"output differs from the eager network's by {err:.3g} (tolerance {tol:.3g})"
    return None


def export_task(task, backend: Backend = "auto", threads: int | None = None) -> Predictor:
    """A fast CPU predictor of a trained task's network, the eager network as fallback.

    Parameters
    ----------
    task : SegmentationTask
        A loaded task (`layerseg.segmentation.trained.predict.load_task`); its network is put
        in eval mode and is not changed otherwise. The export assumes its weights stay as they
        are.
    backend : {'auto', 'openvino', 'onnxruntime', 'torchscript', 'eager'}
        ``auto``: the first of `BACKENDS` that exports and passes the check; a named backend:
        that one, the eager network if it fails.
    threads : int, optional
        CPU threads (see `inference_threads`).

    Returns
    -------
    Predictor
        ``backend`` says which one runs; ``skipped`` why faster ones were not used. An export
        that raised or failed the check is reported once by a `RuntimeWarning`; an optional
        package that is not installed only in the log.

    Raises
    ------
    ConfigError
        Unknown backend, or a bad thread count.
    """
    from ...errors import ConfigError
    if backend not in ("auto", *BACKENDS):
        raise ConfigError(f"backend must be 'auto' or one of {', '.join(BACKENDS)}, got "
                          f"{backend!r}")
    n = inference_threads(threads)
    net = task.net.eval()
    m = int(task.size_multiple)
    c = int(task.hparams.in_channels)
    gen = torch.Generator().manual_seed(0)
    example = torch.rand(1, c, 4 * m, 4 * m, generator=gen)
    probe = torch.rand(2, c, 3 * m, 5 * m, generator=gen)   # another batch and frame size
    order = BACKENDS if backend == "auto" else (backend, "eager")
    skipped: dict[str, str] = {}
    for name in order:
        if name == "eager":
            break
        try:
            fn = _build(name, net, example, n)
        except ImportError as e:
            skipped[name] = f"not installed ({e}); pip install 'layerseg[fast]'"
            log.info("layerseg: %s backend not used: %s", name, skipped[name])
            continue
        except Exception as e:  # noqa: BLE001 - any export failure falls back
            why = f"export failed ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})"
        else:
            try:
                why = _check(fn, net, probe)
            except Exception as e:  # noqa: BLE001
                why = f"exported graph failed to run ({type(e).__name__}: {e})"
            if why is None:
                return Predictor(name, fn, n, skipped)
        skipped[name] = why
        warnings.warn(f"layerseg: {name} backend not used for fast CPU inference, {why}; "
                      "falling back", RuntimeWarning, stacklevel=2)
    return Predictor("eager", _eager(net, n), n, skipped)


# --------------------------------------------------------------------------- accelerators
def resolve_device(device: str | None) -> str:
    """``auto`` (or None) -> ``cuda`` when torch sees a CUDA device, else ``cpu``; ``cpu``,
    ``cuda`` and ``cuda:N`` are checked and returned.

    Raises
    ------
    ConfigError
        An unknown device name, or a CUDA device that torch does not see.
    """
    d = (device or "auto").strip().lower()
    if d == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if d == "cpu":
        return d
    if d == "cuda" or (d.startswith("cuda:") and d[5:].isdigit()):
        if not torch.cuda.is_available():
            raise ConfigError(f"device {device!r}: torch sees no CUDA device here (a CPU-only "
                              "torch build, or no GPU); use --device cpu or auto")
        if ":" in d and int(d[5:]) >= torch.cuda.device_count():
            raise ConfigError(f"device {device!r}: torch sees {torch.cuda.device_count()} CUDA "
                              "device(s)")
        return d
    raise ConfigError(f"device must be auto, cpu, cuda or cuda:N, got {device!r}")


def device_predictor(task, device: str, amp: str | None = "auto") -> Predictor:
    """The eager network on an accelerator, in mixed precision: ``predictor(x)`` moves the
    float32 CPU batch there, runs it under ``torch.autocast`` and returns float32 logits on the
    CPU.

    Parameters
    ----------
    task : SegmentationTask
    device : str
        A torch device (``cuda``, ``cuda:1``; ``cpu`` runs the same code on the CPU).
    amp : {'auto', 'bf16', 'fp16', None}
        Autocast type: ``auto`` is bfloat16 where the device supports it, else float16 (on the
        CPU: bfloat16); None runs in float32.

    Returns
    -------
    Predictor
        ``backend`` is ``'<device> <amp>'``, e.g. ``cuda bf16``.
    """
    dev = torch.device(device)
    if amp == "auto":
        amp = "bf16" if dev.type == "cpu" or torch.cuda.is_bf16_supported() else "fp16"
    if amp not in ("bf16", "fp16", None):
        raise ConfigError(f"amp must be auto, bf16, fp16 or None, got {amp!r}")
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(amp)
    net = copy.deepcopy(task.net).eval().to(dev)     # the task's own network stays on the CPU

    def run(x):
        with torch.inference_mode(), torch.autocast(dev.type, dtype=dtype or torch.float32,
                                                    enabled=dtype is not None):
            return net(x.to(dev, non_blocking=True)).float().cpu()
    return Predictor(f"{dev} {amp or 'fp32'}", run, torch.get_num_threads())

"""Speed of a trained model on the CPU, exported graph beside the eager network: the code behind
the ``model`` suite of ``layerseg bench speed``.

On one simulated frame (and a random input of the same size for the network alone) it times,
interleaved in one run so that the machine's other load falls on all of them alike,

* ``net_eager``: the network alone, eager;
* ``net_exported``: the network alone, as the exported graph `layerseg.segment` uses
  (`layerseg.segmentation.trained.export`);
* ``segment_exported``: ``layerseg.segment(frame, model=MODEL)`` end to end (resampling to the
  model's spacing, the network, back to the frame's grid, the shared decode);
* ``segment_eager``: the same with the eager network;
* ``classical``: ``layerseg.segment(frame, model="classical")``,

and reports frames/s of each (the best of `repeat` runs), the ratios exported / eager and end to
end / classical, the backend and thread count, and whether the exported and eager answers were
identical label maps. Threads: `layerseg.segmentation.trained.export.inference_threads` (set
``LAYERSEG_THREADS`` to change them).
"""

from __future__ import annotations

import time
import warnings

__all__ = ["run_model_benchmark", "format_model_benchmark", "CASES"]

CASES = ("net_eager", "net_exported", "segment_exported", "segment_eager", "classical")
"""What `run_model_benchmark` times, in the order each round runs them."""


def run_model_benchmark(model: str = "default", shape: tuple[int, int] = (512, 512),
                        repeat: int = 5, seed: int = 7, region: str = "cheek") -> dict:
    """Time a trained model, exported and eager, alone and end to end, beside the classical one.

    Parameters
    ----------
    model : str or path
        A checkpoint path, or a model name `layerseg.segmentation.check_model` resolves
        (``default`` once a default model is shipped).
    shape : (int, int)
        Frame size (rows, cols); the network alone runs on an input of this size.
    repeat : int
        Rounds; each round times every case once, and the fastest round of each is kept.
    seed : int
        Seed of the simulated frame.
    region : str
        Region of the simulated frame.

    Returns
    -------
    dict
        ``model``, ``checkpoint``, ``shape``, ``backend``, ``threads``, ``skipped`` (faster
        backends not used and why), ``export_seconds``, ``network_input`` (the padded size the
        network sees end to end), ``seconds`` and ``frames_per_s`` of each case of `CASES`,
        ``exported_vs_eager`` {``net``, ``segment``} and ``segment_vs_classical``
        {``exported``, ``eager``} (frames/s ratios), ``net_frames_per_s_by_backend`` (the
        network alone through every backend that builds here, the chosen one and eager
        included, timed in the same rounds), ``labels_identical``.

    Raises
    ------
    MissingDependencyError
        ``default`` asked for but no default model is available.
    ConfigError
        Not a trained model (``classical``), or a checkpoint that cannot be loaded.
    """
    import numpy as np
    import torch

    from ..errors import ConfigError, MissingDependencyError
    from ..segmentation import check_model, segment
    from ..segmentation.pipeline import segment_with
    from ..simulate import simulate_frame
    from ._timing import best_time

    try:
        seg = check_model(model)
    except ConfigError as e:
        if isinstance(model, str) and model == "default":
            raise MissingDependencyError(f"the model suite needs a trained model: {e.problem}; "
                                         "give one with --model PATH") from None
        raise
    if seg is None:
        raise ConfigError("the model suite times a trained model; give a checkpoint path, not "
                          "'classical'")
    from ..segmentation.trained.export import BACKENDS, export_task
    from ..segmentation.trained.predict import TrainedSegmenter
    from ..segmentation.trained.transforms import spacing_shape

    eager = TrainedSegmenter(seg.path, exported=False)
    t0 = time.perf_counter()
    fast = seg.predictor          # the export layerseg.segment(frame, model=model) uses
    export_s = time.perf_counter() - t0
    slow = eager.predictor
    task = seg.task
    frame = simulate_frame(seed, region=region, shape=tuple(shape)).frame
    x = torch.rand(1, int(task.hparams.in_channels), *shape,
                   generator=torch.Generator().manual_seed(seed))

    def net(pred):
        def run():
            with torch.inference_mode():
                pred(x)
        return run

    # every other exported backend that builds here, network alone, timed in the same rounds:
    # the measurement behind the order `auto` tries them in
    others = {}
    for name in BACKENDS:
        if name in ("eager", fast.backend):
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")   # a backend that fails falls back: left out
            pred = export_task(task, backend=name, threads=fast.threads)
        if pred.backend == name:
            others[name] = net(pred)
    cases = {"net_eager": net(slow), "net_exported": net(fast),
             "segment_exported": lambda: segment(frame, model=model),
             "segment_eager": lambda: segment_with(eager.scores, frame, model=str(model),
                                                   log_probabilities=True),
             "classical": lambda: segment(frame, model="classical")}
    # warm-up (Numba compilation, first runs of the graphs), and the answers compared
    identical = bool(np.array_equal(segment(frame, model=model),
                                    segment_with(eager.scores, frame,
                                                 log_probabilities=True).labels))
    for k in ("net_eager", "net_exported", "classical"):
        cases[k]()
    for run in others.values():
        run()
    best = dict.fromkeys(CASES, float("inf"))
    best_other = dict.fromkeys(others, float("inf"))
    for _ in range(max(1, int(repeat))):
        for k in CASES:
            best[k] = min(best[k], best_time(cases[k], 1))
        for k, run in others.items():
            best_other[k] = min(best_other[k], best_time(run, 1))
    fps = {k: 1.0 / t for k, t in best.items()}
    by_backend = {fast.backend: fps["net_exported"], **{k: 1.0 / t for k, t in
                                                        best_other.items()},
                  "eager": fps["net_eager"]}
    m = task.size_multiple
    rows, cols = spacing_shape(frame.shape, frame.spacing_mm, task.hparams.spacing_mm)
    return {"model": str(model), "checkpoint": seg.path, "shape": list(shape),
            "backend": fast.backend, "threads": fast.threads, "skipped": fast.skipped,
            "export_seconds": export_s, "frame_spacing_mm": list(frame.spacing_mm),
            "network_input": [rows + (-rows) % m, cols + (-cols) % m],
            "seconds": best, "frames_per_s": fps,
            "exported_vs_eager": {"net": fps["net_exported"] / fps["net_eager"],
                                  "segment": fps["segment_exported"] / fps["segment_eager"]},
            "segment_vs_classical": {"exported": fps["segment_exported"] / fps["classical"],
                                     "eager": fps["segment_eager"] / fps["classical"]},
            "net_frames_per_s_by_backend": by_backend,
            "labels_identical": identical}


def format_model_benchmark(res: dict) -> str:
    """A Markdown table of `run_model_benchmark`'s result: frames/s eager and exported side by
    side, with the ratios."""
    f = res["frames_per_s"]
    r, c = res["shape"]
    v = res["segment_vs_classical"]
    lines = [f"model {res['model']}: {r} x {c} frames, backend {res['backend']} on "
             f"{res['threads']} thread(s) (exported in {res['export_seconds']:.1f} s); end to "
             f"end the network sees {res['network_input'][0]} x {res['network_input'][1]}",
             "", "| frames/s | eager | exported | exported / eager |", "|---|---|---|---|",
             f"| network alone ({r} x {c}) | {f['net_eager']:.1f} | {f['net_exported']:.1f} | "
             f"{res['exported_vs_eager']['net']:.2f} |",
             f"| `layerseg.segment` end to end | {f['segment_eager']:.1f} | "
             f"{f['segment_exported']:.1f} | {res['exported_vs_eager']['segment']:.2f} |",
             "", f"classical segmenter: {f['classical']:.1f} frames/s; end to end over "
             f"classical: exported {v['exported']:.2f}, eager {v['eager']:.2f}"]
    nb = res.get("net_frames_per_s_by_backend") or {}
    if len(nb) > 2:
        lines.append("\nnetwork alone by backend, frames/s (same rounds): " + ", ".join(
            f"{k} {x:.1f}" for k, x in sorted(nb.items(), key=lambda kv: -kv[1])))
    for name, why in res.get("skipped", {}).items():
        lines.append(f"\n{name} not used: {why}")
    if not res.get("labels_identical", True):
        lines.append("\nthe exported and eager answers differ")
    return "\n".join(lines)

"""Speed of the whole batch pipeline beside the segmenter alone: the code behind the
``pipeline`` suite of ``layerseg bench speed``.

On the same simulated exams (multi-frame US DICOM with elastography, as a scanner exports them,
written into a temporary folder), it times

* ``segment``: `layerseg.segment` on frames already in memory (the segmenter's own cost);
* ``segment+score``: the same plus `layerseg.score`;
* ``infer``: `layerseg.infer.run_infer` end to end (read + segment + score + write the label
  maps, overlays, tables and reports),

and prints frames/s for each with the ratios side by side, so the cost of reading, scoring and
writing is visible (``pipeline.infer_vs_segment.ratio``: infer frames/s over segment frames/s,
1 = no overhead).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

__all__ = ["run_pipeline_benchmark", "format_pipeline_benchmark"]


def _exams(folder: Path, n_exams: int, frames_per_exam: int, shape: tuple[int, int],
           seed: int) -> list:
    from ..simulate import simulate_frame
    from ..simulate.dicom_export import write_exam_dicom
    frames = []
    for e in range(n_exams):
        fr = [simulate_frame(np.random.SeedSequence(seed, spawn_key=(e, i)), region="cheek",
                             shape=shape, elasto_kind="swe_kpa").frame
              for i in range(frames_per_exam)]
        write_exam_dicom(folder / f"exam{e:02d}.dcm", fr, patient_name="BENCH^PIPELINE",
                         patient_id=f"BENCH-{e}")
        frames += fr
    return frames


def run_pipeline_benchmark(n_exams: int = 4, frames_per_exam: int = 3,
                           shape: tuple[int, int] = (256, 256), seed: int = 7,
                           model: str = "classical", repeat: int = 2) -> dict:
    """Time the pipeline and its parts on the same simulated exams.

    Parameters
    ----------
    n_exams, frames_per_exam : int
        How many DICOM exams, and frames in each.
    shape : (int, int)
        Frame size (rows, cols) in pixels.
    seed : int
        Seed of the simulated frames.
    model : str
        Passed to `layerseg.segment` and the batch command.
    repeat : int
        Each stage is timed `repeat` times, interleaved, and the fastest run kept (a shared
        machine's other load only ever slows a run down).

    Returns
    -------
    dict
        ``frames``, ``shape``, seconds and frames/s of ``segment``, ``segment_score`` and
        ``infer``, and the ratios ``infer_vs_segment.ratio`` and ``score_vs_segment.ratio``
        (frames/s over the segmenter's frames/s).
    """
    from ..infer.run import run_infer
    from ..io import read
    from ..scoring import score
    from ..segmentation import segment

    with tempfile.TemporaryDirectory(prefix="layerseg-bench-pipeline-") as tmp:
        root = Path(tmp)
        (root / "in").mkdir()
        _exams(root / "in", n_exams, frames_per_exam, shape, seed)
        # the frames as the pipeline reads them (screen regions, spacing, elastography)
        frames = [f for p in sorted((root / "in").glob("*.dcm")) for f in read(p)]
        score(frames[0], segment(frames[0], model=model))   # warm-up (Numba compilation)
        t_seg = t_ss = t_inf = float("inf")
        for r in range(max(1, int(repeat))):
            t0 = time.perf_counter()
            for f in frames:
                segment(f, model=model)
            t_seg = min(t_seg, time.perf_counter() - t0)
            t0 = time.perf_counter()
            for f in frames:
                score(f, segment(f, model=model))
            t_ss = min(t_ss, time.perf_counter() - t0)
            t0 = time.perf_counter()
            summary = run_infer([root / "in"], root / f"out{r}", model=model, progress=False,
                                echo=lambda msg: None)
            t_inf = min(t_inf, time.perf_counter() - t0)
    n = len(frames)
    fps = {k: n / t for k, t in (("segment", t_seg), ("segment_score", t_ss), ("infer", t_inf))}
    return {"frames": n, "shape": list(shape), "model": model,
            "seconds": {"segment": t_seg, "segment_score": t_ss, "infer": t_inf},
            "frames_per_s": fps,
            "infer_vs_segment": {"ratio": fps["infer"] / fps["segment"]},
            "score_vs_segment": {"ratio": fps["segment_score"] / fps["segment"]},
            "summary_frames": summary.get("frames")}


def format_pipeline_benchmark(res: dict) -> str:
    """A Markdown table of `run_pipeline_benchmark`'s result."""
    fps = res["frames_per_s"]
    lines = [f"{res['frames']} frames of {res['shape'][0]} x {res['shape'][1]}, model "
             f"{res['model']}", "", "| stage | frames/s | vs segment |", "|---|---|---|"]
    for k, name in (("segment", "segment"), ("segment_score", "segment + score"),
                    ("infer", "infer end to end (read, segment, score, write)")):
        lines.append(f"| {name} | {fps[k]:.2f} | {fps[k] / fps['segment']:.2f} |")
    return "\n".join(lines)

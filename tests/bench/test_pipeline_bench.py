"""The pipeline benchmark (infer end to end beside the segmenter alone): it runs, every frame
goes through, and the figures and ratios it reports are consistent with its timings."""

import pytest

from layerseg.bench.pipeline import format_pipeline_benchmark, run_pipeline_benchmark


def test_pipeline_benchmark_runs_and_reports_ratios():
    r = run_pipeline_benchmark(n_exams=1, frames_per_exam=2, shape=(128, 128), repeat=1)
    assert r["frames"] == 2
    assert r["summary_frames"]["scored"] == 2 and r["summary_frames"]["failed"] == 0
    fps, sec = r["frames_per_s"], r["seconds"]
    for k in ("segment", "segment_score", "infer"):
        assert sec[k] > 0 and fps[k] == pytest.approx(2 / sec[k])
    assert r["infer_vs_segment"]["ratio"] == pytest.approx(fps["infer"] / fps["segment"])
    table = format_pipeline_benchmark(r)
    assert "infer end to end" in table and table.count("|") >= 12

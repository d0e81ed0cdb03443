"""Batch inference for clinicians: a folder of exams in; label maps, overlays, scores and a
readable report out (``layerseg infer``).

- `infer_frames(paths, model=..., region=...)`: generator of `FrameResult` (labels, segmentation,
  scores, QC flags), one per frame, failures included; the Python API notebooks use;
- `group_exams`: the same, gathered per input file (`ExamResult`);
- `run_infer(inputs, out, ...)`: the whole run with its outputs (see `layerseg.infer.run`);
- `write_exam`, `exam_report_html`, `render_overlay`, `write_label_nifti`: the writers.
"""

from .pipeline import (ExamResult, FrameResult, check_model, exam_key, find_inputs, group_exams,
                       infer_frames, redact)
from .report import RESEARCH_NOTICE, exam_report_html, thickness_svg
from .run import DONE_FILE, TIMED_FIELDS, read_done, run_infer, write_exam
from .writers import (LABEL_COLOURS, label_volume_nifti_bytes, png_bytes, render_overlay,
                      write_label_nifti, write_png)

__all__ = ["FrameResult", "ExamResult", "infer_frames", "group_exams", "find_inputs", "exam_key",
           "check_model", "redact", "run_infer", "write_exam", "read_done", "DONE_FILE",
           "TIMED_FIELDS", "exam_report_html", "thickness_svg", "RESEARCH_NOTICE",
           "LABEL_COLOURS", "render_overlay", "label_volume_nifti_bytes", "write_label_nifti",
           "png_bytes", "write_png"]

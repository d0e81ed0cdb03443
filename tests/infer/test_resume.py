"""Resume: a run killed after its first exam is complete, re-run with --resume, gives outputs
byte-identical to an uninterrupted run, except the files carrying the time of the run:
``run.log`` (left out) and ``summary.json`` (compared without its ``run`` block)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

from layerseg.infer import exam_key, find_inputs

def test_killed_run_resumes_byte_identical(inputs, tmp_path, kit):
    ref = tmp_path / "ref"
    assert kit.run_cli(inputs, "--out", ref, "--no-progress") == 0

    out = tmp_path / "out"
    env = {**os.environ, "LAYERSEG_INFER_TEST_SLEEP_S": "4",
           "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    proc = subprocess.Popen([kit.PY, "-m", "layerseg", "infer", str(inputs), "--out", str(out),
                             "--no-progress"], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 120
        while not list(out.glob("exams/*/done.json")) and time.time() < deadline:
            assert proc.poll() is None, "the run ended before its first exam was done"
            time.sleep(0.1)
        assert proc.poll() is None  # caught between exams: killed before the run ends
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    assert len(list(out.glob("exams/*/done.json"))) < kit.N_EXAMS
    assert not (out / "summary.json").exists()

    assert kit.run_cli(inputs, "--out", out, "--resume", "--no-progress") == 0
    s = kit.summary(out)
    assert s["run"]["exams_resumed"] >= 1 and s["run"]["exams_processed"] < kit.N_EXAMS
    kit.assert_same_outputs(ref, out)   # no stray file either (no .part)


def test_resume_redoes_incomplete_and_changed_exams(inputs, tmp_path, kit):
    ref = tmp_path / "ref"
    assert kit.run_cli(inputs, "--out", ref, "--no-progress") == 0
    out = tmp_path / "out"
    assert kit.run_cli(inputs, "--out", out, "--no-progress") == 0
    exams = sorted((out / "exams").iterdir())
    (exams[0] / "done.json").unlink()          # incomplete: redone
    (exams[1] / "overlay_f000.png").write_bytes(b"stale")
    assert kit.run_cli(inputs, "--out", out, "--resume", "--no-progress", "--workers", 2) == 0
    s = kit.summary(out)
    assert s["run"] == {**s["run"], "exams_resumed": 2, "exams_processed": 1}
    # exams[1] was complete (done.json) and its input unchanged: skipped, stale file kept
    assert (exams[1] / "overlay_f000.png").read_bytes() == b"stale"
    (exams[1] / "overlay_f000.png").write_bytes((ref / "exams" / exams[1].name /
                                                 "overlay_f000.png").read_bytes())
    kit.assert_same_outputs(ref, out)   # no stray file either (no .part)
    # a changed input (modification time) is redone
    src = next(p for p in find_inputs([inputs]) if exam_key(p) == exams[2].name)
    os.utime(src, ns=(src.stat().st_atime_ns, src.stat().st_mtime_ns + 10**9))
    assert kit.run_cli(inputs, "--out", out, "--resume", "--no-progress") == 0
    assert kit.summary(out)["run"]["exams_processed"] == 1


def test_resume_redoes_exams_of_other_weights(inputs, tmp_path, kit, tiny_checkpoint):
    """A checkpoint replaced under the same name (or another release's default model) is not the
    model the done exams were made with: they are redone, and every record names the weights."""
    import hashlib
    import shutil

    import torch
    ck = tmp_path / "model.ckpt"
    shutil.copyfile(tiny_checkpoint, ck)
    out = tmp_path / "out"
    assert kit.run_cli(inputs, "--out", out, "--no-progress", "--model", ck) == 0
    sha = hashlib.sha256(ck.read_bytes()).hexdigest()
    s = kit.summary(out)
    assert s["model"] == str(ck) and s["model_sha256"] == sha
    exams = sorted((out / "exams").iterdir())
    assert all(json.loads((e / "done.json").read_text())["model_sha256"] == sha for e in exams)
    assert f"(weights sha256 {sha[:12]})" in (exams[0] / "report.html").read_text()
    assert kit.run_cli(inputs, "--out", out, "--resume", "--no-progress", "--model", ck) == 0
    assert kit.summary(out)["run"]["exams_resumed"] == kit.N_EXAMS
    # other weights under the same name (and a newer modification time)
    state = torch.load(ck, weights_only=True)
    name = next(k for k, v in state["state_dict"].items() if v.is_floating_point())
    state["state_dict"][name] = state["state_dict"][name] + 0.5
    torch.save(state, ck)
    assert kit.run_cli(inputs, "--out", out, "--resume", "--no-progress", "--model", ck) == 0
    s = kit.summary(out)
    assert s["run"]["exams_resumed"] == 0 and s["run"]["exams_processed"] == kit.N_EXAMS
    new = hashlib.sha256(ck.read_bytes()).hexdigest()
    assert new != sha and s["model_sha256"] == new
    assert all(json.loads((e / "done.json").read_text())["model_sha256"] == new for e in exams)
    # the classical segmenter has no weights
    out2 = tmp_path / "classical"
    assert kit.run_cli(inputs, "--out", out2, "--no-progress", "--model", "classical") == 0
    assert kit.summary(out2)["model_sha256"] is None

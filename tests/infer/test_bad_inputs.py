"""Bad inputs mixed with good: every good exam is done, every bad one listed with its reason,
exit status 1, nothing under exams/ for a bad file, inputs untouched."""

from __future__ import annotations

import shutil

from layerseg.infer import exam_key, find_inputs


def test_bad_inputs_are_recorded_and_skipped(inputs, tmp_path, capsys, kit):
    good = find_inputs([inputs])
    bad_dir = inputs / "bad"
    bad_dir.mkdir()
    data = (inputs / "exam_a.dcm").read_bytes()
    (bad_dir / "truncated.dcm").write_bytes(data[: len(data) // 2])
    (bad_dir / "notes.dcm").write_text("this is a text file, not DICOM\n")
    shutil.copy(inputs / "clinic" / "capture.png", bad_dir / "nospacing.png")  # no sidecar
    (bad_dir / "empty.dcm").write_bytes(b"")
    bad = {p.name: p for p in bad_dir.iterdir()}
    before = kit.digest_tree(inputs)
    capsys.readouterr()

    out = tmp_path / "out"
    assert kit.run_cli(inputs, "--out", out, "--no-progress") == 1
    err = capsys.readouterr().err

    assert kit.digest_tree(inputs) == before  # inputs byte-identical
    s = kit.summary(out)
    assert s["exams"] == {"total": len(good) + 4, "done": len(good), "failed": 4}
    fails = {f["exam"]: f for f in s["failures"]}
    keys = {name: exam_key(p) for name, p in bad.items()}
    assert set(fails) == set(keys.values()) and s["failed"] == 4
    reasons = {name: fails[k]["error"] for name, k in keys.items()}
    assert "empty" in reasons["empty.dcm"]
    assert fails[keys["empty.dcm"]]["error_type"] == "UnsupportedFormatError"
    assert "unknown format" in reasons["notes.dcm"]
    assert "spacing" in reasons["nospacing.png"]
    assert fails[keys["nospacing.png"]]["error_type"] == "SpacingRequiredError"
    assert reasons["truncated.dcm"]
    assert fails[keys["truncated.dcm"]]["error_type"] in ("CorruptFileError", "ReadError")
    for name in bad:  # the file names stay out of summary.json (the key names the exam) ...
        assert name not in (out / "summary.json").read_text()
        # ... but the terminal lists each failure with its file and reason
        assert f"FAILED {bad_dir / name}" in err
    assert "4 failure(s):" in err
    # nothing under exams/ for a bad file; every good exam complete
    assert {p.name for p in (out / "exams").iterdir()} == {exam_key(p) for p in good}
    assert all((out / "exams" / exam_key(p) / "done.json").is_file() for p in good)
    log = (out / "run.log").read_text()
    assert log.count("FAILED") == 4 and "done, 4 failed" in log

"""``layerseg infer`` end to end, and the Python API underneath (infer_frames, group_exams)."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from layerseg.infer import exam_key, find_inputs, group_exams, infer_frames
from layerseg.layers.profiles import LABEL_NAMES



def test_api_generator_yields_per_frame_results(inputs):
    files = find_inputs([inputs])
    names = sorted(p.name for p in files)
    assert names == ["PID-12345_exam_b.dcm", "capture.png", "exam_a.dcm"]  # hidden, .json out
    res = list(infer_frames([inputs / "exam_a.dcm", inputs / "clinic" / "capture.png"],
                            region="cheek"))
    assert [(r.path.name, r.frame_index) for r in res] == [
        ("exam_a.dcm", 0), ("exam_a.dcm", 1), ("capture.png", 0)]
    for r in res:
        assert r.ok and r.error is None
        assert r.labels.dtype == np.uint8 and r.labels.shape == r.frame.shape
        assert set(np.unique(r.labels)) <= set(range(8)) and len(np.unique(r.labels)) >= 4
        assert r.scores.id == r.frame_id and r.scores.layers
        assert {x["layer"] for x in r.scores.layers} >= {"epidermis", "dermis", "fat"}
        assert isinstance(r.flags, list)
        assert r.exam == exam_key(r.path)
    assert res[0].frame.elasto is not None and res[2].frame.elasto is None
    exams = list(group_exams(iter(res)))
    assert [len(e.frames) for e in exams] == [2, 1]


def test_api_records_a_failing_file_and_goes_on(inputs, tmp_path):
    bad = tmp_path / "empty.dcm"
    bad.write_bytes(b"")
    res = list(infer_frames([bad, inputs / "clinic" / "capture.png"]))
    assert not res[0].ok and res[0].frame_index == -1 and "empty" in res[0].error
    assert res[0].error_type == "UnsupportedFormatError"
    assert res[1].ok


def test_end_to_end(inputs, tmp_path, kit):
    run_cli, summary, N_EXAMS, N_FRAMES = kit.run_cli, kit.summary, kit.N_EXAMS, kit.N_FRAMES
    out = tmp_path / "out"
    assert run_cli(inputs, "--out", out, "--region", "jaw", "--no-progress") == 0
    s = summary(out)
    assert s["exams"] == {"total": N_EXAMS, "done": N_EXAMS, "failed": 0}
    assert s["frames"]["total"] == s["frames"]["scored"] == N_FRAMES
    assert s["frames"]["failed"] == 0 and s["failed"] == 0 and s["failures"] == []
    assert s["model"] == "default" and s["region"] == "jaw"        # the shipped network
    assert (out / "run.log").read_text().count("frame(s) scored") == N_EXAMS
    exams = sorted(p for p in (out / "exams").iterdir())
    assert len(exams) == N_EXAMS
    assert {p.name for p in exams} == {exam_key(f) for f in find_inputs([inputs])}

    combined = pd.read_csv(out / "scores.csv")
    parquet = pd.read_parquet(out / "scores.parquet")
    assert len(combined) == len(parquet)
    assert list(combined["layer"]) == list(parquet["layer"])
    assert combined.groupby(["exam", "frame_index"]).ngroups == N_FRAMES
    assert (combined["frame_status"] == "scored").all()
    widths = []
    for ex in exams:
        done = json.loads((ex / "done.json").read_text())
        img = nib.load(ex / "labels.nii.gz")
        vol = np.asarray(img.dataobj)
        assert vol.dtype == np.uint8 and vol.ndim == 3 and vol.shape[2] == done["frames"]
        assert set(np.unique(vol)) <= set(range(8))
        zx, zy, _ = img.header.get_zooms()
        assert img.header.get_xyzt_units()[0] == "mm"
        per_exam = pd.read_csv(ex / "scores.csv")
        assert len(per_exam) == (combined["exam"] == ex.name).sum()
        for k in range(done["frames"]):
            lab = np.asarray(Image.open(ex / f"labels_f{k:03d}.png"))
            np.testing.assert_array_equal(vol[:, :, k].T, lab)
            # one row per frame and layer present in the label map
            rows = combined[(combined["exam"] == ex.name) & (combined["frame_index"] == k)]
            assert sorted(rows["layer"]) == sorted(LABEL_NAMES[v] for v in np.unique(lab) if v)
            over = np.asarray(Image.open(ex / f"overlay_f{k:03d}.png"))
            assert over.ndim == 3 and over.shape[2] == 3 and over.std() > 10
            widths.append((done["frames"], over.shape[1] / over.shape[0]))
        # spacing in the header: the frames were simulated at 0.03125 mm square pixels
        np.testing.assert_allclose([zy, zx], [0.03125, 0.03125], rtol=1e-4)
        html = (ex / "report.html").read_text()
        assert "Research use only, not a medical device" in html
    # DICOM exams (2 frames) carry elastography: shown beside the B-mode, twice as wide
    assert all(r > 1.8 for n, r in widths if n == 2) and all(r < 1.2 for n, r in widths if n == 1)
    # z-scores against the reference ranges: jaw muscle stiffness (the DICOM exams' shear-wave
    # elastography); where no range applies the reason is given, never a silent gap
    mus = combined[(combined["layer"] == "muscle") & combined["stiffness_median_kpa"].notna()]
    assert len(mus) >= 2 and mus["stiffness_median_kpa_z"].notna().all()
    assert combined[combined["layer"] == "dermis"]["reference_reason"].str.contains(
        "no published reference range for dermis thickness_mean_mm").all()


def test_output_inside_input_is_not_read_back(inputs, kit, capsys):
    run_cli, summary, N_EXAMS = kit.run_cli, kit.summary, kit.N_EXAMS
    out = inputs / "results"
    assert run_cli(inputs, "--out", out, "--no-progress") == 0
    assert run_cli(inputs, "--out", out, "--no-progress", "--resume") == 0  # skips results/
    assert summary(out)["exams"]["total"] == N_EXAMS
    # a second run beside the first: the earlier run's outputs are not exams
    capsys.readouterr()
    out2 = inputs / "results2"
    assert run_cli(inputs, "--out", out2, "--no-progress") == 0
    assert summary(out2)["exams"]["total"] == N_EXAMS
    assert f"skipped folder {out}: it holds layerseg outputs" in capsys.readouterr().err


def test_an_earlier_run_is_never_overwritten(inputs, tmp_path, kit, capsys):
    out = tmp_path / "out"
    assert kit.run_cli(inputs / "clinic", "--out", out, "--no-progress") == 0
    before = kit.digest_tree(out)
    # the same folder again, another model: refused before any work, nothing touched
    assert kit.run_cli(inputs / "clinic", "--out", out, "--model", "classical",
                       "--no-progress") == 2
    assert "holds an earlier run" in capsys.readouterr().err
    assert kit.digest_tree(out) == before
    # continuing it is asked for by name
    assert kit.run_cli(inputs / "clinic", "--out", out, "--resume", "--no-progress") == 0


def test_refused_before_any_work(inputs, tmp_path, capsys, kit):
    run_cli = kit.run_cli
    out = tmp_path / "o"
    assert run_cli(inputs, "--out", out, "--model", "no-such-model") == 2
    assert "not available" in capsys.readouterr().err
    assert not (out / "exams").exists()
    for bad, words in ((tmp_path / "missing.ckpt", "checkpoint does not exist"),
                       (tmp_path / "junk.ckpt", "")):
        if bad.name == "junk.ckpt":
            bad.write_bytes(b"not a checkpoint")
        assert run_cli(inputs, "--out", out, "--model", bad) == 2   # a checkpoint path is
        err = capsys.readouterr().err                                # loaded before any work
        assert words in err and str(bad) in err
        assert not (out / "exams").exists()
    (out / "sub").mkdir(parents=True)
    assert run_cli(out / "sub", "--out", out) == 2  # the input lies inside the output
    f = tmp_path / "file"
    f.write_text("x")
    assert run_cli(inputs, "--out", f) == 2
    assert run_cli(tmp_path / "missing", "--out", out) == 2
    assert not (out / "exams").exists()
    for sp in (("0", "0"), ("nan", "0.05"), ("-1", "1"), ("3e-5", "3e-5")):
        assert run_cli(inputs, "--out", out, "--spacing", *sp) == 2      # not once per file
        assert "--spacing" in capsys.readouterr().err
        assert not (out / "exams").exists()


def test_linked_and_unreadable_folders(inputs, tmp_path, kit, capsys, monkeypatch):
    import os

    from layerseg.infer import find_inputs
    root = tmp_path / "walk"
    (root / "a").mkdir(parents=True)
    for n in ("cheek.png", "cheek.json"):
        (root / "a" / n).write_bytes((inputs / "clinic" / n.replace("cheek", "capture"))
                                     .read_bytes())
    clinic = root / "store" / "clinic"
    import shutil
    shutil.copytree(inputs / "clinic", clinic)
    (root / "linked").symlink_to(clinic, target_is_directory=True)      # inside the input
    (root / "a" / "loop").symlink_to(root, target_is_directory=True)    # a link loop
    (root / "a" / "up").symlink_to(inputs, target_is_directory=True)    # outside the input
    skipped = []
    got = find_inputs([root], skipped=skipped)
    # the linked folder's exams once, the loop ends (each real folder walked once), the link
    # out of the input is not followed but named
    assert sorted(p.name for p in got) == sorted(["cheek.png", "capture.png",
                                                  "PID-12345_exam_b.dcm"])
    assert [(d.name, w.split(",")[0]) for d, w in skipped] == [
        ("up", "a link to a folder outside the input")]
    (root / "a" / "up").unlink()
    # a folder that cannot be listed is named, and fails the run (exit status 1)
    locked = os.path.realpath(root / "a")
    real_scandir = os.scandir

    def scandir(path="."):
        if os.path.realpath(path) == locked:
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    skipped = []
    assert "cheek.png" not in {p.name for p in find_inputs([root], skipped=skipped)}
    assert [(Path(d).name, w) for d, w in skipped] == [("a", "cannot be read (Permission "
                                                         "denied)")]
    out = tmp_path / "out"
    capsys.readouterr()
    assert kit.run_cli(root, "--out", out, "--model", "classical", "--no-progress") == 1
    err = capsys.readouterr().err
    assert "skipped folder" in err and "cannot be read" in err
    s = kit.summary(out)
    assert s["exams"]["done"] == 2 and s["failed"] == 1
    (f,) = s["failures"]
    assert f["exam"] is None and "a folder under the inputs cannot be read" in f["error"]
    assert str(root) not in json.dumps(s)
    logged = (out / "run.log").read_text()
    assert "skipped a folder under the inputs: cannot be read" in logged
    assert str(root) not in logged


def test_exam_sidecar_states_the_region(inputs):
    """A scanner export carries no facial region: `<exam>.json` beside it states it, the command
    line's --region wins over it, and a malformed sidecar fails that exam only."""
    a, b = inputs / "exam_a.dcm", inputs / "clinic" / "PID-12345_exam_b.dcm"
    a.with_suffix(".json").write_text('{"region": "forehead"}')
    res = list(infer_frames([a, b]))
    assert {r.segmentation.profile.region for r in res if r.path == a} == {"forehead"}
    assert {r.segmentation.profile.region for r in res if r.path == b} == {"default"}
    forced = list(infer_frames([a], region="jaw"))
    assert {r.segmentation.profile.region for r in forced} == {"jaw"}
    a.with_suffix(".json").write_text('{"regoin": "forehead"}')
    res = list(infer_frames([a, b]))
    assert not res[0].ok and "regoin" in res[0].error
    assert all(r.ok for r in res[1:]) and {r.path for r in res[1:]} == {b}


def test_a_sidecar_shared_by_an_exam_and_an_image(inputs, tmp_path):
    """scan.dcm beside scan.png share scan.json: the image's keys (spacing and the like) do
    not fail the exam, which takes the region; alone, the exam still refuses them."""
    import shutil
    d = tmp_path / "shared"
    d.mkdir()
    png = inputs / "clinic" / "capture.png"
    shutil.copy(inputs / "exam_a.dcm", d / "scan.dcm")
    shutil.copy(png, d / "scan.png")
    side = json.loads(png.with_suffix(".json").read_text())
    side["region"] = "forehead"
    (d / "scan.json").write_text(json.dumps(side))
    res = list(infer_frames([d / "scan.dcm", d / "scan.png"]))
    assert res and all(r.ok for r in res), [r.error for r in res]
    assert {r.segmentation.profile.region for r in res} == {"forehead"}
    assert {r.path.suffix for r in res} == {".dcm", ".png"}
    (d / "scan.png").unlink()
    res = list(infer_frames([d / "scan.dcm"]))
    assert not res[0].ok and "spacing_mm" in res[0].error


def test_a_trained_models_confidence_reaches_the_frame_qc(inputs):
    pytest.importorskip("torch")
    res = list(infer_frames([inputs / "exam_a.dcm"], region="cheek", model="default"))
    assert res and all(r.ok for r in res)
    for r in res:
        conf = r.segmentation.column_confidence
        assert conf is not None and conf.shape == (r.frame.shape[1],)
        assert r.scores.frame["qc_confidence"] == pytest.approx(float(np.nanmean(conf)))
    # the classical segmenter gives no probabilities: no confidence, none invented
    cl = list(infer_frames([inputs / "exam_a.dcm"], region="cheek", model="classical"))
    assert all(r.scores.frame["qc_confidence"] is None for r in cl)


def test_a_frame_the_model_does_not_understand_fails_qc(tmp_path, kit):
    # the bundled cheek sample as a clinician might export it by mistake: rotated a quarter
    # turn (skin along the left edge); the model's column confidence says it does not know
    # it, and that flag fails the frame's QC (before, the mean confidence 0.6 passed it)
    pytest.importorskip("torch")
    src = Path(__file__).resolve().parents[2] / "data" / "samples" / "sim"
    grey = np.asarray(Image.open(src / "cheek_f32.png"))
    side = json.loads((src / "cheek_f32.json").read_text())
    d = tmp_path / "in"
    d.mkdir()
    for name, img in (("plain", grey), ("turned", np.ascontiguousarray(np.rot90(grey)))):
        Image.fromarray(img).save(d / f"{name}.png")
        (d / f"{name}.json").write_text(json.dumps(side))
    res = {r.path.stem: r for r in infer_frames([d / "plain.png", d / "turned.png"],
                                                model="default")}
    turned, plain = res["turned"], res["plain"]
    assert turned.ok and turned.segmentation.uncertain
    assert turned.segmentation.uncertain in turned.flags
    assert not turned.scores.frame["qc_pass"]
    assert turned.segmentation.uncertain in turned.scores.frame["qc_reason"]
    assert turned.scores.frame["qc_confidence"] > 0.5     # the mean alone would have passed it
    assert plain.segmentation.uncertain is None and plain.scores.frame["qc_pass"]
    # the run's summary counts it, and the report names it once, as a QC fail
    out = tmp_path / "out"
    assert kit.run_cli(d, "--out", out, "--model", "default", "--no-progress") == 0
    assert kit.summary(out)["frames"]["qc_flagged"] == 1
    tab = pd.read_csv(out / "scores.csv")
    flagged = tab[tab["qc_pass"] == False]  # noqa: E712
    assert len(flagged) and flagged["qc_reason"].str.contains("model uncertain").all()
    assert not tab["segmentation_flags"].fillna("").str.contains("model uncertain").any()
    texts = [p.read_text() for p in sorted((out / "exams").rglob("report.html"))]
    assert len(texts) == 2 and sorted(t.count("model uncertain") for t in texts) == [0, 1]
    (text,) = [t for t in texts if "model uncertain" in t]
    assert "<b>QC:</b> model uncertain" in text


def test_a_frame_with_nothing_measured_is_a_failed_frame(inputs, monkeypatch):
    # a label source that labels nothing: the score table calls the frame failed, so the
    # run counts it failed too (it was counted scored, and the run exited 0)
    import layerseg.scoring as scoring
    real = scoring.score
    monkeypatch.setattr(scoring, "score", lambda frame, labels, surfaces=None, **kw:
                        real(frame, np.zeros_like(labels), **kw))
    (r,) = list(infer_frames([inputs / "clinic" / "capture.png"], model="classical"))
    assert not r.ok and "nothing could be measured (no labelled layer" in r.error


def test_sex_and_age_from_the_dicom_header_reach_the_reference_ranges(tmp_path):
    # the bundled forehead exam states PatientSex M and PatientAge 067Y: its dermis thickness
    # gets a z-score against the forehead reference range (none without sex and age)
    exam = Path(__file__).resolve().parents[2] / "data" / "samples" / "exams" / "exam_forehead.dcm"
    res = list(infer_frames([exam]))
    assert res and res[0].ok
    assert res[0].frame.meta.extra["sex"] == "M" and res[0].frame.meta.extra["age_years"] == 67
    derm = [x for x in res[0].scores.layers if x["layer"] == "dermis"][0]
    assert derm["thickness_mean_mm_z"] is not None

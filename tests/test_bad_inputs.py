"""Bad inputs through the commands, as a user meets them: outputs over inputs, a bad file in the
middle of a batch, a bad label, a blank frame, an unknown region, an unwritable output folder.
Each gives a clear layerseg error or the right result, inputs stay byte-identical, and a batch
finishes every good frame."""

import hashlib
import json

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from layerseg import Frame, FrameMeta
from layerseg.cli import main
from layerseg.io import DatasetWriter


def _frame(rng, region="jaw", blank=False):
    lab = np.zeros((120, 150), np.uint8)
    lab[8:14] = 1
    lab[14:50] = 2
    lab[50:90] = 3
    lab[90:100] = 4
    lab[100:] = 6
    grey = np.clip(np.choose(lab, [5, 200, 140, 40, 180, 60, 90, 230]) +
                   rng.normal(0, 8, lab.shape), 0, 255)
    if blank:
        grey = np.zeros_like(grey)
    return Frame(grey, (0.03, 0.06), dynamic_range_db=60.0, meta=FrameMeta(region=region)), lab


def _dataset(root, rng, regions=("jaw", "jaw", "jaw", "jaw"), blank=()):
    with DatasetWriter(root) as w:
        for i, reg in enumerate(regions):
            f, lab = _frame(rng, reg, blank=i in blank)
            w.add(f, f"fr{i}", subject_id=f"s{i}", label=lab)
    return root


def _digest(root):
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def ds(tmp_path, rng):
    return _dataset(tmp_path / "ds", rng)


@pytest.mark.parametrize("argv", [
    ["score", "--data", "{ds}", "--out", "{ds}/manifest.csv"],
    ["score", "--data", "{ds}", "--out", "{tmp}/s.csv", "--wide", "{ds}/labels/fr1.png"],
    ["score", "--data", "{ds}", "--out", "{tmp}/s.csv", "--wide", "{tmp}/s.csv"],
    ["bench", "accuracy", "--data", "{ds}", "--json", "{ds}/images/fr0.png"],
    ["bench", "accuracy", "--data", "{ds}", "--json", "{tmp}/a.json", "--csv", "{ds}/manifest.csv"],
])
def test_output_over_input_is_refused_and_inputs_untouched(ds, tmp_path, capsys, argv):
    before = _digest(ds)
    argv = [a.format(ds=ds, tmp=tmp_path) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "error" in err and ("is an input" in err or "same file" in err)
    assert _digest(ds) == before
    assert not (tmp_path / "s.csv").exists() and not (tmp_path / "a.json").exists()


def test_unwritable_output_is_refused_before_work(ds, tmp_path, capsys):
    blocker = tmp_path / "blocker"
    blocker.write_text("not a folder")
    for argv in (["score", "--data", str(ds), "--out", str(blocker / "s.csv")],
                 ["bench", "accuracy", "--data", str(ds), "--json", str(blocker / "a.json")],
                 ["bench", "speed", "--quick", "--json", str(blocker / "b.json")]):
        assert main(argv) == 2
        assert "cannot write in this folder" in capsys.readouterr().err
    assert blocker.read_text() == "not a folder"


def test_bad_file_mid_batch_every_good_frame_done(ds, tmp_path, capsys):
    (ds / "images" / "fr1.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")      # corrupt image
    Image.fromarray(np.full((120, 150), 9, np.uint8)).save(ds / "labels" / "fr2.png")  # bad label
    before = _digest(ds)
    out = tmp_path / "s.csv"
    assert main(["score", "--data", str(ds), "--out", str(out), "--wide",
                 str(tmp_path / "w.csv")]) == 1
    wide = pd.read_csv(tmp_path / "w.csv").set_index("id")
    assert wide.loc["fr0", "frame_status"] == "scored" and wide.loc["fr3", "frame_status"] == "scored"
    assert wide.loc["fr1", "frame_status"] == "failed" and "fr1.png" in wide.loc["fr1", "frame_reason"]
    assert "outside 0-7" in wide.loc["fr2", "frame_reason"]
    capsys.readouterr()

    acc = tmp_path / "a.json"
    assert main(["bench", "accuracy", "--data", str(ds), "--json", str(acc)]) == 1
    rows = pd.read_csv(tmp_path / "a.csv").set_index("id")
    assert list(rows["status"]) == ["ok", "failed", "failed", "ok"]
    assert json.loads(acc.read_text())["frames"] == 2
    assert "outside 0-7" in rows.loc["fr2", "error"]
    capsys.readouterr()

    assert main(["info", str(ds)]) == 1
    cap = capsys.readouterr()
    assert "fr0:" in cap.out and "fr3:" in cap.out and "fr1" in cap.err
    assert _digest(ds) == before


def test_blank_frame_and_unknown_region(tmp_path, rng, capsys):
    ds = _dataset(tmp_path / "ds", rng, regions=("jaw", "elbow", "", "jaw"), blank=(3,))
    assert main(["score", "--data", str(ds), "--out", str(tmp_path / "s.csv"), "--wide",
                 str(tmp_path / "w.csv")]) == 0
    wide = pd.read_csv(tmp_path / "w.csv").set_index("id")
    assert "region unknown" in wide.loc["fr1", "qc_notes"]
    assert wide.loc["fr1", "qc_profile"] == "default"
    assert not wide.loc["fr3", "qc_pass"] and "no usable contrast" in wide.loc["fr3", "qc_reason"]
    assert wide.loc["fr0", "qc_pass"]
    capsys.readouterr()

    assert main(["bench", "accuracy", "--data", str(ds), "--json", str(tmp_path / "a.json")]) == 1
    rows = pd.read_csv(tmp_path / "a.csv").set_index("id")
    assert rows.loc["fr1", "status"] == "ok" and "'elbow' is not a known profile" in rows.loc["fr1", "notes"]
    assert rows.loc["fr3", "status"] == "failed" and "no usable contrast" in rows.loc["fr3", "error"]
    assert rows.loc["fr0", "status"] == "ok" and rows.loc["fr2", "status"] == "ok"

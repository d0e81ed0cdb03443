"""`layerseg score` end to end on a tiny dataset written with DatasetWriter: long/wide/Parquet
tables, a broken frame recorded with its reason and a non-zero exit, --compare agreement."""

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from layerseg import Frame, FrameMeta
from layerseg.cli import main
from layerseg.io import DatasetWriter


def make_frame(rng, dermis_rows, rows=160, cols=200, with_elasto=True):
    lab = np.zeros((rows, cols), np.uint8)
    lab[10:18] = 1
    lab[18:18 + dermis_rows] = 2
    lab[18 + dermis_rows:120] = 3
    lab[120:135] = 4
    lab[135:] = 6
    grey = np.clip(np.choose(lab, [5, 200, 140, 40, 180, 60, 90, 230]) + rng.normal(0, 8, lab.shape),
                   0, 255)
    el = None
    if with_elasto:
        el = np.where(lab == 6, 10.0, 5.0).astype(np.float32)
        el[:, :20] = np.nan
    f = Frame(grey, (0.02, 0.05), elasto=el, elasto_kind="swe_kpa" if with_elasto else None,
              dynamic_range_db=60.0, meta=FrameMeta(region="jaw"))
    return f, lab


def write_dataset(root, rng, n=4):
    with DatasetWriter(root) as w:
        for i in range(n):
            f, lab = make_frame(rng, 40 + 3 * i)
            w.add(f, f"fr{i}", subject_id=f"s{i}", label=lab, age=30 + 10 * i,
                  sex="F" if i % 2 else "M")


def test_score_cli_end_to_end(tmp_path, rng, capsys):
    data = tmp_path / "ds"
    write_dataset(data, rng)
    out = tmp_path / "scores.csv"
    rc = main(["score", "--data", str(data), "--out", str(out), "--parquet",
               str(tmp_path / "scores.parquet"), "--wide", str(tmp_path / "wide.csv")])
    assert rc == 0
    long = pd.read_csv(out)
    assert set(long["id"]) == {"fr0", "fr1", "fr2", "fr3"}
    assert (long["frame_status"] == "scored").all()
    derm = long[long["layer"] == "dermis"].set_index("id")
    for i in range(4):
        assert abs(derm.loc[f"fr{i}", "thickness_mean_mm"] - (40 + 3 * i) * 0.02) <= 0.02
    mus = long[long["layer"] == "muscle"].set_index("id")
    assert (mus["stiffness_median_kpa"] == 10.0).all()
    assert mus["stiffness_median_kpa_z"].notna().all()       # masseter SWE reference at the jaw
    pq = pd.read_parquet(tmp_path / "scores.parquet")
    assert len(pq) == len(long) and list(pq.columns) == list(long.columns)
    wide = pd.read_csv(tmp_path / "wide.csv")
    assert len(wide) == 4 and "dermis_thickness_mean_mm" in wide.columns
    assert "s0" in set(wide["subject_id"])
    # no file paths anywhere in the outputs
    text = out.read_text() + (tmp_path / "wide.csv").read_text()
    assert str(tmp_path) not in text and "images/" not in text


def test_score_cli_broken_frame_recorded_and_exit_nonzero(tmp_path, rng, capsys):
    data = tmp_path / "ds"
    write_dataset(data, rng)
    # break one frame: a label map of another shape
    Image.fromarray(np.zeros((50, 50), np.uint8)).save(data / "labels" / "fr2.png")
    out = tmp_path / "scores.csv"
    rc = main(["score", "--data", str(data), "--out", str(out)])
    assert rc == 1
    long = pd.read_csv(out)
    bad = long[long["id"] == "fr2"]
    assert len(bad) == 1 and bad.iloc[0]["frame_status"] == "failed"
    assert "fr2" in bad.iloc[0]["frame_reason"] and "shape" in bad.iloc[0]["frame_reason"]
    assert (long[long["id"] != "fr2"]["frame_status"] == "scored").all()
    err = capsys.readouterr().err
    assert "FAILED fr2" in err and "1 failed" in err


def test_score_cli_compare_label_folder(tmp_path, rng):
    data = tmp_path / "ds"
    write_dataset(data, rng)
    other = tmp_path / "other_labels"
    other.mkdir()
    for i in range(4):
        lab = np.array(Image.open(data / "labels" / f"fr{i}.png"))
        # the second rater puts the dermis-fat boundary 2 rows deeper
        lab2 = lab.copy()
        col = lab2[:, 0]
        b = int(np.flatnonzero(col == 3)[0])
        lab2[b:b + 2] = 2
        np.save(other / f"fr{i}.npy", lab2)
    out = tmp_path / "scores.csv"
    agr_path = tmp_path / "agr.csv"
    rc = main(["score", "--data", str(data), "--out", str(out), "--compare", str(other),
               "--agreement-out", str(agr_path)])
    assert rc == 0
    agr = pd.read_csv(agr_path)
    r = agr[(agr["layer"] == "dermis") & (agr["marker"] == "thickness_mean_mm")].iloc[0]
    assert r["n"] == 4
    # every frame's dermis is two rows (0.04 mm) thicker for the second rater: a constant offset
    assert r["bias"] == pytest.approx(-2 * 0.02, abs=1e-6)
    assert r["sd_diff"] == pytest.approx(0.0, abs=1e-6)
    assert r["loa_lower"] == pytest.approx(r["bias"], abs=1e-5)
    a = pd.read_csv(out).query("layer == 'dermis'").set_index("id")["thickness_mean_mm"]
    assert r["mean_a"] == pytest.approx(a.mean()) and r["mean_b"] == pytest.approx(a.mean() + 0.04)
    # ICC(A,1) penalises the offset: from the two-way ANOVA of [a, a + 0.04] by hand
    x = np.c_[a.to_numpy(), a.to_numpy() + 0.04]
    n, k = x.shape
    gm = x.mean()
    msr = k * ((x.mean(axis=1) - gm) ** 2).sum() / (n - 1)
    msc = n * ((x.mean(axis=0) - gm) ** 2).sum() / (k - 1)
    mse = (((x - gm) ** 2).sum() - (n - 1) * msr - (k - 1) * msc) / ((n - 1) * (k - 1))
    want = (msr - mse) / (msr + (k - 1) * mse + k * (msc - mse) / n)
    assert 0 < want < 0.95
    assert r["icc"] == pytest.approx(want, abs=1e-6)


def test_qc_flagged_frames_scored_and_unlabelled_frame_failed(tmp_path, rng):
    data = tmp_path / "ds"
    with DatasetWriter(data) as w:
        f, lab = make_frame(rng, 40, with_elasto=False)
        w.add(f, "good", label=lab)
        nosp = Frame(f.bmode, None, meta=FrameMeta(region="jaw"))
        w.add(nosp, "nospacing", label=lab)
        w.add(f, "nolabel")
    out = tmp_path / "s.csv"
    wide = tmp_path / "w.parquet"
    rc = main(["score", "--data", str(data), "--out", str(out), "--wide", str(wide)])
    assert rc == 1                                   # the unlabelled frame failed entirely
    w_ = pd.read_parquet(wide).set_index("id")
    assert w_.loc["good", "frame_status"] == "scored" and bool(w_.loc["good", "qc_pass"])
    # no spacing: scored, flagged, physical measures empty with their reason
    assert w_.loc["nospacing", "frame_status"] == "scored"
    assert not bool(w_.loc["nospacing", "qc_pass"])
    assert "spacing" in w_.loc["nospacing", "qc_reason"]
    assert pd.isna(w_.loc["nospacing", "dermis_thickness_mean_mm"])
    assert "spacing" in w_.loc["nospacing", "dermis_thickness_reason"]
    assert w_.loc["nolabel", "frame_status"] == "failed"
    assert "label" in w_.loc["nolabel", "frame_reason"]


def test_score_cli_compare_dataset_with_itself_and_composite(tmp_path, rng):
    data = tmp_path / "ds"
    write_dataset(data, rng)
    weights = tmp_path / "w.json"
    weights.write_text('{"muscle:stiffness_median_kpa": 1.0}')
    out = tmp_path / "s.csv"
    rc = main(["score", "--data", str(data), "--out", str(out), "--compare", str(data),
               "--wide", str(tmp_path / "wide.csv"), "--composite-weights", str(weights)])
    assert rc == 0
    agr = pd.read_csv(tmp_path / "s_agreement.csv")
    r = agr[(agr["layer"] == "dermis") & (agr["marker"] == "thickness_mean_mm")].iloc[0]
    assert r["bias"] == 0 and r["icc"] == 1.0
    wide = pd.read_csv(tmp_path / "wide.csv")
    # composite = the one weighted z-score (masseter SWE reference at the jaw)
    zs = pd.read_csv(out).query("layer == 'muscle'").set_index("id")["stiffness_median_kpa_z"]
    assert np.allclose(wide.set_index("id")["composite_index"].loc[zs.index], zs)
    bad = tmp_path / "bad.json"
    bad.write_text('{"x": "y"}')
    assert main(["score", "--data", str(data), "--out", str(out), "--composite-weights",
                 str(bad)]) == 2

"""No name, ID, birth date, institution or identifying file name from the inputs reaches any
output (file names, tables, Parquet, NIfTI, report, log) unless --keep-ids."""

from __future__ import annotations

import gzip
import io

import pandas as pd


def _haystacks(out):
    """Every output as bytes to search: each file's path, its raw bytes, and decoded forms
    (gunzipped NIfTI, the Parquet table as text)."""
    for p in sorted(out.rglob("*")):
        yield str(p.relative_to(out)), str(p.relative_to(out)).encode()
        if not p.is_file():
            continue
        raw = p.read_bytes()
        yield str(p), raw
        if p.name.endswith(".gz"):
            yield f"{p} (gunzipped)", gzip.decompress(raw)
        if p.suffix == ".parquet":
            buf = io.StringIO()
            pd.read_parquet(p).to_csv(buf)
            yield f"{p} (decoded)", buf.getvalue().encode()


def _found(out, needles):
    hits = []
    for where, hay in _haystacks(out):
        low = hay.lower()
        hits += [(n, where) for n in needles if n.lower().encode() in low]
    return hits


def test_no_identifier_in_any_output(inputs, tmp_path, kit):
    # (short parts such as "Doe" alone occur by chance in base64 image data)
    ids = list(kit.IDS.values()) + ["Doe Jane", "Jane Doe", "1970-01-01"]
    out = tmp_path / "out"
    assert kit.run_cli(inputs, "--out", out, "--no-progress") == 0
    files = [p for p in out.rglob("*") if p.is_file()]
    assert len(files) > 20 and any(p.suffix == ".parquet" for p in files)
    assert not (out / "key_map.csv").exists()
    assert _found(out, ids + ["exam_a", "capture", str(inputs)]) == []


def test_keep_ids_and_key_map_do_carry_them(inputs, tmp_path, kit):
    # the search above finds what is there: with --keep-ids the file stems name the exams
    out = tmp_path / "kept"
    assert kit.run_cli(inputs, "--out", out, "--no-progress", "--keep-ids") == 0
    assert {p.name for p in (out / "exams").iterdir()} == {"exam_a", "PID-12345_exam_b",
                                                          "capture"}
    assert ("PID-12345", "exams/PID-12345_exam_b") in _found(out, ["PID-12345"])
    # the key map is written only when asked for, and holds the paths
    out2 = tmp_path / "mapped"
    assert kit.run_cli(inputs, "--out", out2, "--no-progress", "--write-key-map") == 0
    km = pd.read_csv(out2 / "key_map.csv")
    assert len(km) == kit.N_EXAMS and km["input"].str.contains("PID-12345").any()
    assert {n for n, w in _found(out2, ["PID-12345"])} == {"PID-12345"}
    assert all("key_map.csv" in w for n, w in _found(out2, ["PID-12345"]))


def test_failures_name_no_sidecar_or_map_beside_the_input(inputs, tmp_path, kit):
    # errors about the files beside an input (its sidecar, an elastography map its sidecar
    # names) carried those names into summary.json and run.log
    import json
    import shutil
    src = inputs / "clinic"
    d = tmp_path / "leak"
    d.mkdir()
    shutil.copy(src / "capture.png", d / "DOE_JANE_MRN12345.png")
    (d / "DOE_JANE_MRN12345.json").write_text(json.dumps({"spacing_mm": [0, 0.05]}))
    shutil.copy(src / "capture.png", d / "ROE_RICHARD.png")
    side = json.loads((src / "capture.json").read_text())
    side["elasto"] = {"map": "SMITH_JOHN_kpa.npy"}
    (d / "ROE_RICHARD.json").write_text(json.dumps(side))
    out = tmp_path / "out"
    assert kit.run_cli(d, "--out", out, "--no-progress") == 1
    s = kit.summary(out)
    assert s["exams"]["failed"] == 2 and len(s["failures"]) == 2
    assert all("<input" in f["error"] for f in s["failures"])
    assert _found(out, ["DOE_JANE", "MRN12345", "ROE_RICHARD", "SMITH_JOHN", str(d)]) == []

    # given as a relative path from inside the folder, with spaces in the names
    (d / "ROE_RICHARD.png").rename(d / "ROE RICHARD.png")
    (d / "ROE_RICHARD.json").rename(d / "ROE RICHARD.json")
    side["elasto"] = {"map": "SMITH JOHN kpa.npy"}
    (d / "ROE RICHARD.json").write_text(json.dumps(side))
    import os
    here = os.getcwd()
    os.chdir(d)
    try:
        out2 = tmp_path / "out2"
        assert kit.run_cli(".", "--out", out2, "--no-progress") == 1
    finally:
        os.chdir(here)
    assert kit.summary(out2)["exams"]["failed"] == 2
    assert _found(out2, ["DOE_JANE", "MRN12345", "ROE RICHARD", "SMITH JOHN", str(d)]) == []

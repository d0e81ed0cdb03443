"""``--workers N``: reader threads read and decode ahead while the main thread segments and
scores; the outputs are byte-identical to one worker (timestamps aside), failures are recorded
the same way, the prefetch is bounded and the threads stop with the run."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from layerseg.errors import ConfigError
from layerseg.infer import exam_key, find_inputs, infer_frames, run_infer


def _bad_files(inputs):
    bad = inputs / "bad"
    bad.mkdir()
    data = (inputs / "exam_a.dcm").read_bytes()
    (bad / "truncated.dcm").write_bytes(data[: len(data) // 2])
    (bad / "empty.dcm").write_bytes(b"")
    return {p.name: p for p in bad.iterdir()}


def test_two_workers_byte_identical_to_one_with_a_bad_file(inputs, tmp_path, capsys, kit):
    bad = _bad_files(inputs)
    good = [p for p in find_inputs([inputs]) if p.parent.name != "bad"]
    outs = {}
    for n in (1, 2, 3):
        outs[n] = tmp_path / f"w{n}"
        assert kit.run_cli(inputs, "--out", outs[n], "--no-progress", "--workers", n) == 1
        err = capsys.readouterr().err
        for name in bad:  # listed on the terminal with its file
            assert f"FAILED {inputs / 'bad' / name}" in err
    ref = kit.digest_tree(outs[1])
    assert len([k for k in ref if k.endswith("done.json")]) == len(good)
    for n in (2, 3):
        kit.assert_same_outputs(outs[1], outs[n])
        sn = kit.summary(outs[n])
        assert sn["exams"] == {"total": len(good) + 2, "done": len(good), "failed": 2}
        fails = {f["exam"]: f for f in sn["failures"]}
        empty = fails[exam_key(bad["empty.dcm"])]
        assert "empty" in empty["error"] and empty["error_type"] == "UnsupportedFormatError"
        assert fails[exam_key(bad["truncated.dcm"])]["error"]


@pytest.mark.parametrize("workers", [2, 3])
def test_frame_decode_error_in_a_reader_thread(inputs, monkeypatch, workers, kit):
    kit.flaky_read(monkeypatch, bad_index=1, n=3)
    f = inputs / "clinic" / "capture.png"
    one = list(infer_frames([f], workers=1))
    many = list(infer_frames([f], workers=workers))
    assert [(r.frame_index, r.ok) for r in many] == [(0, True), (1, False), (2, True)]
    assert [(r.frame_index, r.ok, r.error, r.error_type) for r in one] == \
        [(r.frame_index, r.ok, r.error, r.error_type) for r in many]
    assert "frame 1 is damaged" in many[1].error and many[1].error_type == "CorruptFileError"
    for a, b in zip(one, many):
        if a.ok:
            assert np.array_equal(a.labels, b.labels)
            assert a.scores.to_long().equals(b.scores.to_long())


def _reader_threads():
    return [t for t in threading.enumerate() if t.name.startswith("layerseg-read")]


def test_prefetch_is_bounded_and_threads_stop(inputs, monkeypatch, kit):
    decoded: list[int] = []
    kit.flaky_read(monkeypatch, bad_index=None, n=12, counter=decoded)
    gen = infer_frames([inputs / "clinic" / "capture.png"], workers=2)
    first = next(gen)
    assert first.ok and first.frame_index == 0
    assert _reader_threads()
    assert len(decoded) <= 3  # the frame in hand and at most 2 ahead, never the whole file
    gen.close()               # the caller stops early: the reader threads end
    assert not _reader_threads()


def test_workers_below_one_refused(inputs, tmp_path, capsys, kit):
    out = tmp_path / "o"
    for bad in ("0", "-2", "two", "1.5"):
        assert kit.run_cli(inputs, "--out", out, "--workers", bad) == 2
        err = capsys.readouterr().err
        assert "--workers" in err and "1 or more" in err
    assert not out.exists()
    with pytest.raises(ConfigError, match="1 or more"):
        run_infer([inputs], out, workers=0)
    with pytest.raises(ConfigError, match="1 or more"):
        next(infer_frames([inputs / "exam_a.dcm"], workers=0))
    assert not out.exists()


def test_workers_auto():
    from layerseg.cli.infer import parse_workers
    assert 1 <= parse_workers("auto") <= 2 and parse_workers("3") == 3


def test_refs_handed_out_decode_after_the_reader_ends(inputs):
    # a consumer may hold several refs before asking for their frames (batching): the end of
    # the file list must not cancel their decodes; closing early still stops the threads
    from layerseg.infer.pipeline import _prefetched_refs
    f = inputs / "exam_a.dcm"
    refs = list(_prefetched_refs([f], {f: "k"}, None, 2))
    assert [r.frame().shape for r in refs] == [(256, 256), (256, 256)]
    assert not _reader_threads()

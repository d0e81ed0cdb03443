"""The one batch loop (layerseg.batch)."""

import pytest

from layerseg.batch import run_each, summarise_outcomes
from layerseg.cli import exit_status
from layerseg.errors import CorruptFileError


def _work(x):
    if x == 2:
        raise CorruptFileError("truncated pixel data", f"f{x}.dcm")
    if x == 4:
        raise ZeroDivisionError("a bug")
    if x == 5:
        raise OSError(28, "No space left on device")
    return x * 10


def test_failures_recorded_and_the_loop_goes_on():
    outs = list(run_each(range(7), _work, key=lambda x: f"item{x}"))
    assert [o.key for o in outs] == [f"item{i}" for i in range(7)]
    assert [o.value for o in outs if o.ok] == [0, 10, 30, 60]
    bad = {o.key: o for o in outs if not o.ok}
    assert set(bad) == {"item2", "item4", "item5"}
    assert bad["item2"].error == "f2.dcm: truncated pixel data"
    assert bad["item2"].error_type == "CorruptFileError"
    assert "internal error" in bad["item4"].error and "ZeroDivisionError" in bad["item4"].error
    assert "No space left" in bad["item5"].error
    s = summarise_outcomes(outs)
    assert (s["items"], s["ok"], s["failed"]) == (7, 4, 3)
    assert exit_status(s["failed"]) == 1 and exit_status(0) == 0


def test_interrupt_is_not_swallowed():
    def work(x):
        if x == 1:
            raise KeyboardInterrupt
        return x
    it = run_each(range(3), work)
    assert next(it).value == 0
    with pytest.raises(KeyboardInterrupt):
        next(it)

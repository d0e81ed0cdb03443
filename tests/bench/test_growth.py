"""The cost-growth suite (`layerseg.bench.growth`): the ratios follow from the timings (a fake
clock with known costs), the real cases run, and the flat keys carry them."""

import pytest

from layerseg.bench import growth
from layerseg.bench.ratios import flat_ratios


class _Clock:
    """A clock that only the fake work advances."""

    def __init__(self):
        self.t = 0.0

    def perf_counter(self):
        return self.t


def test_ratios_from_known_costs(monkeypatch):
    clock = _Clock()

    def cases(shape, model, seed, tmp, filters, with_model, small):
        px = shape[0] * shape[1]

        def cost(seconds):
            def run():
                clock.t += seconds
            return run
        # proportional to pixels, quadratic in pixels, and a fixed cost plus a linear part
        return {"linear": cost(px * 1e-6), "quadratic": cost((px * 1e-4) ** 2),
                "fixed+linear": cost(0.5 + px * 1e-6)}

    monkeypatch.setattr(growth, "_cases", cases)
    monkeypatch.setattr(growth, "time", clock)
    res = growth.run_growth_benchmark(sizes=((10, 10), (20, 20)), model="classical", repeat=2)
    c = res["cases"]
    assert res["pixel_ratio"] == 4
    assert c["linear"]["time_ratio"] == pytest.approx(4) and c["linear"]["within_target"]
    assert c["linear"]["linearity"] == pytest.approx(1)
    assert c["quadratic"]["time_ratio"] == pytest.approx(16)
    assert not c["quadratic"]["within_target"]
    assert c["fixed+linear"]["time_ratio"] == pytest.approx((0.5 + 4e-4) / (0.5 + 1e-4))
    assert c["fixed+linear"]["linearity"] > 1
    for r in c.values():
        assert r["linearity"] * r["time_ratio"] == pytest.approx(4)
    md = growth.format_growth_benchmark(res)
    assert "| quadratic |" in md and "NO" in md
    flat = flat_ratios({"suites": {"growth": {"status": "ok", "results": res}}})
    assert flat["growth.quadratic.linearity.ratio"] == pytest.approx(0.25)
    assert flat["growth.fixed_linear.linearity.ratio"] > 1


def test_case_over_target_is_timed_again(monkeypatch):
    """A case over the target after the rounds gets as many rounds again, and only it; a burst
    that slowed its large size in the first rounds does not stand, a real excess does."""
    clock = _Clock()
    calls = {"burst": 0}

    def cases(shape, model, seed, tmp, filters, with_model, small):
        px = shape[0] * shape[1]
        big = shape != small

        def linear():
            clock.t += px * 1e-6

        def burst():                     # the large size slowed in its first 2 runs only
            n = calls["burst"] = calls["burst"] + big
            clock.t += px * 1e-6 * (3 if big and n <= 2 else 1)

        def quadratic():
            clock.t += (px * 1e-4) ** 2
        return {"linear": linear, "burst": burst, "quadratic": quadratic}

    monkeypatch.setattr(growth, "_cases", cases)
    monkeypatch.setattr(growth, "time", clock)
    res = growth.run_growth_benchmark(sizes=((10, 10), (20, 20)), model="classical", repeat=1)
    c = res["cases"]
    assert c["linear"]["rounds"] == 1 and c["linear"]["within_target"]
    # warm-up (1) + the round (2) were slow; the round again is not
    assert c["burst"]["rounds"] == 2 and c["burst"]["time_ratio"] == pytest.approx(4)
    assert c["burst"]["within_target"]
    assert c["quadratic"]["rounds"] == 2 and not c["quadratic"]["within_target"]
    assert "| burst |" in growth.format_growth_benchmark(res)


def test_real_cases_run_on_small_frames():
    res = growth.run_growth_benchmark(sizes=((48, 48), (96, 96)), model="classical", repeat=1,
                                      filters=True)
    names = set(res["cases"])
    assert {"search.ordered", "segment.classical@finer", "segment.classical@field",
            "filters.median 5x5",
            "filters.nlm l2 p7 s11"} <= names
    assert not any(n.startswith(("model.", "infer.")) for n in names)   # no trained model
    for r in res["cases"].values():
        assert all(s > 0 for s in r["seconds"].values())


def test_memory_speed_is_measured_at_both_working_sets(monkeypatch):
    """The copy rate of each size's eight float32 score maps is timed in the same rounds and
    reported beside the cases (bytes from the sizes; rates positive on the real clock)."""
    monkeypatch.setattr(growth, "_cases", lambda *a, **k: {"noop": lambda: None})
    res = growth.run_growth_benchmark(sizes=((16, 32), (32, 64)), model="classical", repeat=2)
    mem = res["memory"]
    assert mem["16x32"]["bytes"] == 8 * 16 * 32 * 4 and mem["32x64"]["bytes"] == 8 * 32 * 64 * 4
    assert all(m["copy_gb_per_s"] > 0 for m in mem.values())
    md = growth.format_growth_benchmark(res)
    assert "memory speed" in md and "32x64 (0 MiB)" in md and "GB/s" in md


def test_each_timing_covers_the_same_pixels(monkeypatch):
    """The small size is called the pixel ratio's number of times in each timing and reported
    per call; a quiet gap that only a short call fits in (here: every first call after the
    large size ran) no longer makes the small size's best."""
    clock = _Clock()
    n_calls = {}
    last = {"big": False}

    def cases(shape, model, seed, tmp, filters, with_model, small):
        px = shape[0] * shape[1]
        big = shape != small

        def run():
            n_calls[big] = n_calls.get(big, 0) + 1
            # a call right after the large size's runs at 0.8 of the cost (a quiet gap)
            clock.t += px * 1e-6 * (0.8 if not big and last["big"] else 1.0)
            last["big"] = big
        return {"gap": run}

    monkeypatch.setattr(growth, "_cases", cases)
    monkeypatch.setattr(growth, "time", clock)
    res = growth.run_growth_benchmark(sizes=((10, 10), (20, 20)), model="classical", repeat=3)
    assert res["calls_per_timing"] == {"10x10": 4, "20x20": 1}
    assert n_calls == {False: 1 + 3 * 4, True: 1 + 3}       # warm-up, then the rounds
    r = res["cases"]["gap"]
    # per call: (0.8 + 3 x 1) / 4 of the small cost: ratio 4.21, within the target; timing
    # one short call would have kept 0.8 (ratio 5.0, over it)
    assert r["seconds"]["10x10"] == pytest.approx(100e-6 * 3.8 / 4)
    assert r["time_ratio"] == pytest.approx(4 / (3.8 / 4)) and r["within_target"]
    assert "4 calls at 10x10, 1 call at 20x20" in growth.format_growth_benchmark(res)

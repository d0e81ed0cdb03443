import json

import numpy as np
import pytest
import scipy.io

from layerseg.errors import (CalibrationError, CorruptFileError, InvalidImageError, ReadError,
                             UnsupportedFormatError)
from layerseg.io.rf import read_rf, rf_envelope, rf_to_frame

C = 1540.0
FS = 200.0     # MHz
F0 = 24.0      # MHz
SIGMA_T = 0.04e-6  # s, Gaussian envelope width


def _pulse_lines(n_samples=1200, n_lines=8, t0=3.0e-6, iq=False, amp=1.0):
    """Lines holding a Gaussian-modulated pulse at time t0 (RF at F0, or its baseband IQ)."""
    t = np.arange(n_samples) / (FS * 1e6)
    env = amp * np.exp(-(t - t0) ** 2 / (2 * SIGMA_T ** 2))
    if iq:
        sig = env * np.exp(1j * 0.7)                    # demodulated: envelope times a phase
    else:
        sig = env * np.cos(2 * np.pi * F0 * 1e6 * (t - t0) + 0.7)
    return np.repeat(sig[:, None], n_lines, axis=1), env


def _db_profile(frame, col=0):
    return (frame.bmode[:, col] / 255.0 - 1.0) * frame.dynamic_range_db


def _minus6db_width(depth_mm, db):
    """Full width at -6.02 dB (amplitude 1/2) by linear interpolation around the peak."""
    k = int(np.argmax(db))
    level = 20 * np.log10(0.5)
    i = k
    while db[i] > level:
        i -= 1
    left = depth_mm[i] + (level - db[i]) / (db[i + 1] - db[i]) * (depth_mm[i + 1] - depth_mm[i])
    j = k
    while db[j] > level:
        j += 1
    right = depth_mm[j - 1] + (level - db[j - 1]) / (db[j] - db[j - 1]) * (
        depth_mm[j] - depth_mm[j - 1])
    return right - left


def test_envelope_peak_depth_and_width_rf():
    t0 = 3.0e-6
    rf, _ = _pulse_lines(t0=t0)
    f = rf_to_frame(rf, FS, f0_mhz=F0, line_pitch_mm=0.1, dynamic_range_db=60)
    dz = C / (2 * FS * 1e6) * 1e3                    # mm per sample
    assert f.spacing_mm == pytest.approx((dz, 0.1))
    assert f.meta.calibration == "rf_sampling" and f.intensity == "display"
    assert f.dynamic_range_db == 60 and f.meta.frequency_mhz == F0
    depth = np.arange(f.shape[0]) * dz
    peak = depth[np.argmax(f.bmode[:, 3])]
    assert abs(peak - C * t0 / 2 * 1e3) <= dz         # c t / 2
    # -6 dB full width of exp(-t^2 / 2 sigma^2): 2 sigma sqrt(2 ln 2) in time, times c/2
    w_ref = 2 * SIGMA_T * np.sqrt(2 * np.log(2)) * C / 2 * 1e3
    w = _minus6db_width(depth, _db_profile(f, 3))
    assert w == pytest.approx(w_ref, rel=0.03)


def test_iq_gives_same_envelope():
    rf, env = _pulse_lines()
    iq, _ = _pulse_lines(iq=True)
    np.testing.assert_allclose(rf_envelope(iq), np.repeat(env[:, None], 8, 1), atol=1e-12)
    # the Hilbert envelope of the RF matches the analytic envelope where the pulse lies
    e_rf = rf_envelope(rf)
    np.testing.assert_allclose(e_rf[:, 0], env, atol=2e-3)
    a = rf_to_frame(rf, FS, line_pitch_mm=0.1)
    b = rf_to_frame(iq, FS, f0_mhz=F0, line_pitch_mm=0.1)
    assert b.meta.extra["envelope"] == "iq" and a.meta.extra["envelope"] == "hilbert"
    region = slice(480, 720)     # the pulse (sample 600) +- 6 envelope widths
    np.testing.assert_allclose(a.bmode[region], b.bmode[region], atol=1.0)


def test_log_compression_end_points():
    dr = 50.0
    mags = np.array([1.0, 10 ** (-dr / 20), 10 ** (-dr / 40), 10 ** (-dr / 10), 0.3])
    iq = np.repeat(mags[:, None], 2, 1).astype(np.complex128)
    f = rf_to_frame(iq, spacing=(0.02, 0.1), dynamic_range_db=dr)
    np.testing.assert_allclose(f.bmode[:, 0], [255, 0, 127.5, 0, 255 * (1 + 20 * np.log10(0.3)
                                                                        / dr)], atol=1e-3)
    # a fixed reference compresses every frame alike
    g = rf_to_frame(iq * 0.5, spacing=(0.02, 0.1), dynamic_range_db=dr, reference=1.0)
    assert g.bmode[0, 0] == pytest.approx(255 * (1 + 20 * np.log10(0.5) / dr), abs=1e-3)
    assert f.meta.calibration == "user"


def test_resampling_grid_and_peak():
    t0 = 3.0e-6
    rf, _ = _pulse_lines(t0=t0, n_lines=9)
    f = rf_to_frame(rf, FS, f0_mhz=F0, line_pitch_mm=0.1, pixel_mm=(0.02, 0.05))
    dz = C / (2 * FS * 1e6) * 1e3
    n_ax = int(np.floor((1200 - 1) * dz / 0.02 + 1e-9)) + 1
    assert f.shape == (n_ax, 17) and f.spacing_mm == (0.02, 0.05)
    depth = np.arange(f.shape[0]) * 0.02
    assert abs(depth[np.argmax(f.bmode[:, 5])] - C * t0 / 2 * 1e3) <= 0.02
    # decimation keeps the -6 dB width (the anti-alias filter widens it only slightly)
    w_ref = 2 * SIGMA_T * np.sqrt(2 * np.log(2)) * C / 2 * 1e3
    assert _minus6db_width(depth, _db_profile(f, 5)) == pytest.approx(w_ref, rel=0.25)


def test_resampling_linear_envelope_exact_and_anti_alias():
    # an envelope linear in depth is reproduced exactly by upsampling (linear interpolation)
    n = 50
    mag = 1.0 + np.arange(n) * 0.1
    iq = np.repeat(mag[:, None], 4, 1).astype(np.complex128)
    f = rf_to_frame(iq, spacing=(0.04, 0.2), pixel_mm=(0.01, 0.2), dynamic_range_db=40)
    z = np.arange(f.shape[0]) * 0.01
    ref = 1.0 + z / 0.04 * 0.1
    expect = (20 * np.log10(ref / ref.max()) / 40 + 1) * 255
    np.testing.assert_allclose(f.bmode[:, 1], expect, atol=1e-3)
    # decimating a pattern alternating every sample: without the filter every output pixel
    # would land on the same phase (all bright); with it the output sits near the mean
    alt = np.where(np.arange(400) % 2 == 0, 1.0, 0.2)
    iq = np.repeat(alt[:, None], 3, 1).astype(np.complex128)
    g = rf_to_frame(iq, spacing=(0.01, 0.1), pixel_mm=(0.08, 0.1), reference=1.0,
                    dynamic_range_db=40)
    mean_db = 20 * np.log10(0.6)
    interior = g.bmode[2:-2, 1]
    np.testing.assert_allclose(interior, (mean_db / 40 + 1) * 255, atol=8)


def test_rf_to_frame_bad_input():
    rf, _ = _pulse_lines()
    with pytest.raises(CalibrationError, match="fs_mhz"):
        rf_to_frame(rf, None, line_pitch_mm=0.1, source="x.npy")
    with pytest.raises(CalibrationError, match="line_pitch_mm") as ei:
        rf_to_frame(rf, FS, source="x.npy")
    assert "x.npy" in str(ei.value)
    with pytest.raises(CalibrationError, match="Hz"):
        rf_to_frame(rf, FS * 1e6, line_pitch_mm=0.1)
    with pytest.raises(CalibrationError, match="aliased"):
        rf_to_frame(rf, 40.0, f0_mhz=F0, line_pitch_mm=0.1)
    with pytest.raises(CalibrationError, match="sound speed"):
        rf_to_frame(rf, FS, line_pitch_mm=0.1, c_m_s=1.54)
    bad = rf.copy()
    bad[3, 2] = np.nan
    with pytest.raises(InvalidImageError, match="NaN"):
        rf_to_frame(bad, FS, line_pitch_mm=0.1)
    with pytest.raises(InvalidImageError, match="2-D"):
        rf_to_frame(rf[:, 0], FS, line_pitch_mm=0.1)
    with pytest.raises(InvalidImageError, match="at least 2 x 2"):
        rf_to_frame(rf[:, :1], FS, line_pitch_mm=0.1)
    with pytest.raises(InvalidImageError, match="zero everywhere"):
        rf_to_frame(np.zeros((10, 4)), FS, line_pitch_mm=0.1)
    with pytest.raises(InvalidImageError, match="complex IQ"):
        rf_to_frame(rf, FS, line_pitch_mm=0.1, iq=True)
    with pytest.raises(InvalidImageError, match="dynamic_range_db"):
        rf_to_frame(rf, FS, line_pitch_mm=0.1, dynamic_range_db=0)
    with pytest.raises(CalibrationError, match="fewer than 2 x 2"):
        rf_to_frame(rf, FS, line_pitch_mm=0.1, pixel_mm=5.0)


def test_read_npy_2d_3d_and_sidecar(tmp_path):
    rf, _ = _pulse_lines(n_samples=600, t0=1.5e-6)
    p = tmp_path / "one.npy"
    np.save(p, rf.astype(np.float32))
    with pytest.raises(CalibrationError, match="fs_mhz") as ei:
        read_rf(p)
    assert "one.npy" in str(ei.value)
    fs = read_rf(p, fs_mhz=FS, f0_mhz=F0, line_pitch_mm=0.1)
    assert len(fs) == 1
    ref = rf_to_frame(rf.astype(np.float32), FS, f0_mhz=F0, line_pitch_mm=0.1)
    np.testing.assert_array_equal(fs[0].bmode, ref.bmode)
    assert fs[0].meta.source == str(p)
    # spacing instead of the acquisition parameters
    f = read_rf(p, spacing=(0.005, 0.1))[0]
    assert f.spacing_mm == (0.005, 0.1) and f.meta.calibration == "user"
    # a stack (frames, samples, lines) with a sidecar
    stack = np.stack([rf * (k + 1) for k in range(3)]).astype(np.float32)
    q = tmp_path / "loop.npy"
    np.save(q, stack)
    (tmp_path / "loop.json").write_text(json.dumps(
        {"fs_mhz": FS, "f0_mhz": F0, "line_pitch_mm": 0.1, "dynamic_range_db": 45}))
    loop = read_rf(q)
    assert len(loop) == 3
    assert loop[2].dynamic_range_db == 45 and loop[2].meta.frame_index == 2
    np.testing.assert_allclose(loop[2].bmode, loop[0].bmode, atol=1e-3)  # max-referenced
    assert read_rf(q, dynamic_range_db=70)[1].dynamic_range_db == 70      # arguments win
    assert loop[0].meta.calibration == "rf_sampling"
    # spacing from the sidecar is the file's calibration, not a user override
    (tmp_path / "loop.json").write_text(json.dumps({"spacing_mm": [0.006, 0.08]}))
    f = read_rf(q)[0]
    assert f.spacing_mm == (0.006, 0.08) and f.meta.calibration == "sidecar"
    assert "spacing_override" not in f.meta.extra
    f = read_rf(q, spacing=(0.005, 0.1))[0]                                # arguments win
    assert f.spacing_mm == (0.005, 0.1) and f.meta.calibration == "user"
    (tmp_path / "loop.json").write_text('{"fs": 200}')
    with pytest.raises(CorruptFileError, match="unknown key"):
        read_rf(q)


def test_read_mat_v5_with_parameters(tmp_path):
    rf, _ = _pulse_lines(n_samples=600, t0=1.5e-6)
    stack = np.stack([rf, 2 * rf], axis=2)                 # MATLAB order (samples, lines, frames)
    p = tmp_path / "acq.mat"
    scipy.io.savemat(p, {"RFdata": stack, "fs": FS * 1e6, "fc": F0 * 1e6, "pitch": 1e-4,
                         "c0": 1540.0, "note": "x"})
    fs = read_rf(p)
    assert len(fs) == 2
    f = fs[1]
    assert f.spacing_mm == pytest.approx((C / (2 * FS * 1e3), 0.1))
    assert f.meta.frequency_mhz == pytest.approx(F0)
    assert f.meta.extra["mat_variable"] == "RFdata"
    assert f.meta.extra["mat_parameters"]["fs_mhz"] == "fs"
    ref = rf_to_frame(2 * rf, FS, f0_mhz=F0, line_pitch_mm=0.1)
    np.testing.assert_allclose(f.bmode, ref.bmode, atol=1e-3)
    # several candidate arrays and none of the usual names: ask for the variable
    q = tmp_path / "two.mat"
    scipy.io.savemat(q, {"a": rf, "b": rf})
    with pytest.raises(UnsupportedFormatError, match="variable=NAME"):
        read_rf(q, fs_mhz=FS, line_pitch_mm=0.1)
    assert read_rf(q, variable="b", fs_mhz=FS, line_pitch_mm=0.1)[0].shape == rf.shape
    with pytest.raises(UnsupportedFormatError, match="not found"):
        read_rf(q, variable="zzz", fs_mhz=FS, line_pitch_mm=0.1)
    # no sampling rate anywhere
    r = tmp_path / "nofs.mat"
    scipy.io.savemat(r, {"rf": rf})
    with pytest.raises(CalibrationError, match="fs_mhz") as ei:
        read_rf(r, line_pitch_mm=0.1)
    assert "nofs.mat" in str(ei.value)


def test_read_mat_v73_hdf5(tmp_path):
    h5py = pytest.importorskip("h5py")
    iq, _ = _pulse_lines(n_samples=500, t0=1.2e-6, iq=True)
    stack = np.stack([iq, iq, iq], axis=2)                 # MATLAB (samples, lines, frames)
    p = tmp_path / "v73.mat"
    with h5py.File(p, "w", userblock_size=512) as f:
        comp = np.empty(stack.T.shape, dtype=[("real", "<f8"), ("imag", "<f8")])
        comp["real"], comp["imag"] = stack.T.real, stack.T.imag   # h5 stores MATLAB reversed
        f["IQData"] = comp
        f["fs"] = np.array([[FS * 1e6]])
        f["pitch"] = np.array([[1e-4]])
    with open(p, "r+b") as f:
        f.write(b"MATLAB 7.3 MAT-file".ljust(116, b" "))
    fs = read_rf(p)
    assert len(fs) == 3 and fs[0].shape == iq.shape
    ref = rf_to_frame(iq, FS, line_pitch_mm=0.1)
    np.testing.assert_allclose(fs[2].bmode, ref.bmode, atol=1e-3)
    assert fs[0].meta.extra["format"] == "mat-v7.3"


def test_read_uff_beamformed(tmp_path, monkeypatch):
    pyuff = pytest.importorskip("pyuff_ustb")
    nx, nz = 12, 40
    x = np.linspace(-3e-3, 3e-3, nx)
    z = np.linspace(1e-3, 1e-3 + (nz - 1) * 2.5e-5, nz)
    rng = np.random.default_rng(3)
    frames = rng.uniform(0.1, 1, (nz, nx, 2)) * np.exp(1j * rng.uniform(0, 6, (nz, nx, 2)))
    # pixels run z fastest: pixel index = ix * nz + iz
    data = frames.transpose(1, 0, 2).reshape(nx * nz, 1, 1, 2).astype(np.complex64)
    bd = pyuff.BeamformedData(scan=pyuff.LinearScan(x_axis=x, z_axis=z), data=data,
                              sampling_frequency=1e8, modulation_frequency=24e6)
    p = tmp_path / "bf.uff"
    bd.write(str(p), "beamformed_data", ignore_missing_compulsory_fields=True)
    fs = read_rf(p, dynamic_range_db=40)
    assert len(fs) == 2
    f = fs[1]
    assert f.shape == (nz, nx) and f.meta.calibration == "header"
    assert f.spacing_mm == pytest.approx((0.025, 6.0 / (nx - 1)))
    ref = rf_to_frame(frames[:, :, 1].astype(np.complex64), spacing=(0.025, 6.0 / (nx - 1)),
                      dynamic_range_db=40)
    np.testing.assert_allclose(f.bmode, ref.bmode, atol=1e-3)
    assert f.meta.frequency_mhz == pytest.approx(24.0)
    # frames are read one at a time from the HDF5 file
    import layerseg.io.rf as mod
    seen = []
    orig = mod._UffArray.__getitem__
    monkeypatch.setattr(mod._UffArray, "__getitem__",
                        lambda self, idx: seen.append(idx) or orig(self, idx))
    np.testing.assert_array_equal(fs[1].bmode, f.bmode)
    assert seen == [(slice(None), 0, 0, 1)]


def test_read_uff_refusals(tmp_path):
    pyuff = pytest.importorskip("pyuff_ustb")
    h5py = pytest.importorskip("h5py")
    p = tmp_path / "plain.h5"
    with h5py.File(p, "w") as f:
        f["x"] = np.zeros(3)
    with pytest.raises(UnsupportedFormatError, match="no USTB beamformed data") as ei:
        read_rf(p)
    assert "plain.h5" in str(ei.value)
    sec = pyuff.SectorScan(azimuth_axis=np.linspace(-0.3, 0.3, 5),
                           depth_axis=np.linspace(1e-3, 5e-3, 8),
                           origin=pyuff.Point(distance=0.0, azimuth=0.0, elevation=0.0))
    bd = pyuff.BeamformedData(scan=sec, data=np.ones((40, 1, 1, 1), np.complex64))
    q = tmp_path / "sector.uff"
    bd.write(str(q), "b_data", ignore_missing_compulsory_fields=True)
    with pytest.raises(UnsupportedFormatError, match="SectorScan"):
        read_rf(q)


def test_read_bad_files(tmp_path):
    with pytest.raises(ReadError, match="does not exist"):
        read_rf(tmp_path / "nope.npy")
    e = tmp_path / "e.npy"
    e.write_bytes(b"")
    with pytest.raises(CorruptFileError, match="empty"):
        read_rf(e)
    t = tmp_path / "t.npy"
    np.save(t, np.ones((100, 10)))
    t.write_bytes(t.read_bytes()[:500])
    with pytest.raises(CorruptFileError, match="truncated") as ei:
        read_rf(t, fs_mhz=FS, line_pitch_mm=0.1)
    assert "t.npy" in str(ei.value)
    o = tmp_path / "o.npy"
    np.save(o, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(CorruptFileError, match="object"):
        read_rf(o)
    d4 = tmp_path / "d4.npy"
    np.save(d4, np.ones((2, 3, 4, 5)))
    with pytest.raises(InvalidImageError, match="frames, samples, lines"):
        read_rf(d4, fs_mhz=FS, line_pitch_mm=0.1)
    m = tmp_path / "fake.mat"
    m.write_text("not matlab at all")
    with pytest.raises(CorruptFileError, match="MATLAB"):
        read_rf(m)
    u = tmp_path / "x.bin"
    u.write_bytes(b"\x01\x02" * 50)
    with pytest.raises(UnsupportedFormatError, match="not an RF file"):
        read_rf(u)

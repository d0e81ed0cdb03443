"""Write the small bundled sample frames into data/samples/ (deterministic; < 300 kB in all).

    python scripts/make_samples.py [--out data/samples]

The frames are synthetic stand-ins for 24 MHz facial B-mode (coupling gel, entry echo, dermis,
subcutaneous fat with septa, SMAS, muscle, periosteum with its shadow): smooth layered echogenicity
times Rayleigh speckle, log-compressed to 60 dB. They exercise the readers, not the anatomy; the
simulator writes realistic frames.

Files:
- ``us_bmode_regions.dcm``: single-frame US DICOM, a 'screen' with a header band and a grey bar
  around a tissue region (Sequence of Ultrasound Regions, 0.0025 cm axial x 0.005 cm lateral).
- ``us_cine_jpeg.dcm``: 4-frame US cine, JPEG baseline, the same region calibration.
- ``bmode_capture.png`` + ``bmode_capture.json``: a screen capture with its spacing in a sidecar.
"""

from __future__ import annotations

import argparse
import io
import json
from pathlib import Path

import numpy as np
from PIL import Image
from scipy import ndimage

AXIAL_MM, LATERAL_MM = 0.025, 0.05
TISSUE_ROWS, TISSUE_COLS = 240, 220
DYNAMIC_RANGE_DB = 60.0
SEED = 20240924

# (name, top depth mm at the centre, mean echogenicity relative to dermis) from the skin down
_LAYERS = [("gel", 0.0, 0.0005), ("epidermis", 0.45, 5.0), ("dermis", 0.6, 1.0),
           ("fat", 2.1, 0.03), ("smas", 3.6, 1.5), ("muscle", 4.1, 0.12),
           ("bone", 5.5, 8.0), ("shadow", 5.62, 0.0003)]


def synth_bmode(rng: np.random.Generator, rows: int = TISSUE_ROWS, cols: int = TISSUE_COLS,
                phase: float = 0.0) -> np.ndarray:
    """One synthetic layered B-mode frame, uint8 grey (rows, cols)."""
    depth = np.arange(rows)[:, None] * AXIAL_MM
    x = np.arange(cols)[None, :] * LATERAL_MM
    bend = 0.12 * np.sin(2 * np.pi * x / (cols * LATERAL_MM) + phase)  # gently curved skin
    echo = np.zeros((rows, cols))
    for name, top, level in _LAYERS:
        echo = np.where(depth >= top + bend * (1.0 if name != "bone" else 0.3), level, echo)
    fat = (depth >= 2.1 + bend) & (depth < 3.6 + bend)
    septa = np.abs(np.sin(2 * np.pi * (depth * 0.8 + x * 0.35) / 1.3)) > 0.97  # oblique septa
    echo = np.where(fat & septa, 0.6, echo)
    muscle = (depth >= 4.1 + bend) & (depth < 5.5 + 0.3 * bend)
    fibres = 1 + 0.5 * np.sin(2 * np.pi * depth / 0.18 + 0.2 * x)
    echo = np.where(muscle, echo * fibres, echo)
    # scatterers of random phase, weighted by the echogenicity, blurred by a Gaussian PSF:
    # a fully developed speckle (Rayleigh amplitude) correlated over the resolution cell
    scat = np.sqrt(echo) * (rng.standard_normal((rows, cols))
                            + 1j * rng.standard_normal((rows, cols)))
    psf_sigma = (0.03 / AXIAL_MM, 0.09 / LATERAL_MM)  # about 24 MHz resolution, in pixels
    field = (ndimage.gaussian_filter(scat.real, psf_sigma)
             + 1j * ndimage.gaussian_filter(scat.imag, psf_sigma))
    amp = np.abs(field)
    db = 20 * np.log10(np.maximum(amp, 1e-6) / np.percentile(amp, 99.5))
    return np.clip((db / DYNAMIC_RANGE_DB + 1) * 255, 0, 255).astype(np.uint8)


def _screen(tissue: np.ndarray) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """Embed a tissue image in a 'scanner screen' with a header band and a grey bar.

    Returns the screen and the tissue region's inclusive (x0, y0, x1, y1)."""
    r, c = tissue.shape
    top, left = 24, 12
    screen = np.zeros((r + top + 8, c + left + 24), np.uint8)
    screen[4:14, 10:90] = 200  # a 'text' block in the header
    screen[top:top + r, left:left + c] = tissue
    screen[top:top + 128, left + c + 8:left + c + 16] = np.linspace(255, 0, 128)[:, None]
    return screen, (left, top, left + c - 1, top + r - 1)


def _us_dataset(screen_shape, box, n_frames, jpeg: bool, uid_seed: str):
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.sequence import Sequence
    from pydicom.uid import ExplicitVRLittleEndian, JPEGBaseline8Bit, generate_uid

    sop = "1.2.840.10008.5.1.4.1.1.3.1" if n_frames > 1 else "1.2.840.10008.5.1.4.1.1.6.1"
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = sop
    ds.file_meta.MediaStorageSOPInstanceUID = generate_uid(entropy_srcs=[uid_seed, "sop"])
    ds.file_meta.TransferSyntaxUID = JPEGBaseline8Bit if jpeg else ExplicitVRLittleEndian
    ds.SOPClassUID, ds.SOPInstanceUID = sop, ds.file_meta.MediaStorageSOPInstanceUID
    ds.Modality = "US"
    ds.PatientName, ds.PatientID = "Anonymous^Sample", "SAMPLE-0001"
    ds.StudyInstanceUID = generate_uid(entropy_srcs=["layerseg-sample-study"])
    ds.SeriesInstanceUID = generate_uid(entropy_srcs=[uid_seed, "series"])
    ds.Manufacturer, ds.ManufacturerModelName = "layerseg", "synthetic 24 MHz"
    ds.ImageType = ["DERIVED", "SECONDARY"]
    ds.ImageComments = "synthetic sample written by scripts/make_samples.py; not patient data"
    ds.Rows, ds.Columns = screen_shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated = ds.BitsStored = 8
    ds.HighBit, ds.PixelRepresentation = 7, 0
    if n_frames > 1:
        ds.NumberOfFrames = n_frames
        ds.FrameTime = 50.0
    reg = Dataset()
    reg.RegionSpatialFormat, reg.RegionDataType, reg.RegionFlags = 1, 1, 0
    (reg.RegionLocationMinX0, reg.RegionLocationMinY0,
     reg.RegionLocationMaxX1, reg.RegionLocationMaxY1) = box
    reg.PhysicalUnitsXDirection = reg.PhysicalUnitsYDirection = 3  # cm
    reg.PhysicalDeltaX, reg.PhysicalDeltaY = LATERAL_MM / 10, AXIAL_MM / 10
    reg.ReferencePixelX0, reg.ReferencePixelY0 = 0, 0
    reg.ReferencePixelPhysicalValueX = reg.ReferencePixelPhysicalValueY = 0.0
    reg.TransducerFrequency = 24000  # kHz
    ds.SequenceOfUltrasoundRegions = Sequence([reg])
    return ds


def make_samples(out: Path) -> list[Path]:
    """Write the sample files into `out`; returns their paths."""
    from pydicom.encaps import encapsulate

    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(SEED)
    written = []

    screen, box = _screen(synth_bmode(rng))
    ds = _us_dataset(screen.shape, box, 1, False, "us_bmode_regions")
    ds.PixelData = screen.tobytes()
    p = out / "us_bmode_regions.dcm"
    ds.save_as(p, enforce_file_format=True)
    written.append(p)

    n = 4
    frames = [_screen(synth_bmode(rng, phase=0.15 * k))[0] for k in range(n)]
    ds = _us_dataset(frames[0].shape, box, n, True, "us_cine_jpeg")
    encoded = []
    for f in frames:
        buf = io.BytesIO()
        Image.fromarray(f).save(buf, format="JPEG", quality=80)
        encoded.append(buf.getvalue())
    ds.PixelData = encapsulate(encoded)
    ds["PixelData"].VR = "OB"
    ds.LossyImageCompression, ds.LossyImageCompressionMethod = "01", "ISO_10918_1"
    p = out / "us_cine_jpeg.dcm"
    ds.save_as(p, enforce_file_format=True)
    written.append(p)

    p = out / "bmode_capture.png"
    Image.fromarray(synth_bmode(rng, rows=200, cols=200)).save(p, optimize=True)
    side = p.with_suffix(".json")
    side.write_text(json.dumps({"spacing_mm": [AXIAL_MM, LATERAL_MM],
                                "dynamic_range_db": DYNAMIC_RANGE_DB, "frequency_mhz": 24.0,
                                "device": "layerseg synthetic 24 MHz",
                                "comment": "synthetic sample from scripts/make_samples.py"},
                               indent=2) + "\n")
    written += [p, side]
    return written


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path,
                    default=Path(__file__).resolve().parent.parent / "data" / "samples")
    args = ap.parse_args(argv)
    files = make_samples(args.out)
    total = sum(f.stat().st_size for f in files)
    for f in files:
        print(f"{f}: {f.stat().st_size / 1024:.1f} kB")
    print(f"total {total / 1024:.1f} kB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Simulated 24 MHz facial ultrasound with exact ground truth: anatomy tables, layered phantoms,
a COLE-like acoustic model (scatterers, depth-dependent PSF, attenuation, noise, TGC, log
compression), elastography and dataset/DICOM writers. Never imports torch."""

from .acoustics import AcousticParams
from .anatomy import SIM_REGIONS, draw_anatomy
from .core import SimulatedFrame, simulate_frame
from .dataset import plan_dataset, simulate_dataset
from .phantom import Artefacts

__all__ = ["simulate_frame", "SimulatedFrame", "simulate_dataset", "plan_dataset", "AcousticParams", "Artefacts", "SIM_REGIONS",
           "draw_anatomy"]

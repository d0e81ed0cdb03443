"""The simulator's DICOM private block has one owner, `layerseg.io._private`."""

from __future__ import annotations

from pathlib import Path

import layerseg
from layerseg.io import _private, dicom
from layerseg.simulate import dicom_export

PKG = Path(layerseg.__file__).parent


def test_reader_and_exporter_share_the_constants():
    assert dicom.SIM_PRIVATE_GROUP is _private.SIM_PRIVATE_GROUP
    assert dicom.SIM_PRIVATE_CREATOR is _private.SIM_PRIVATE_CREATOR
    # the exporter's public names are aliases of the same objects
    assert dicom_export.PRIVATE_GROUP is _private.SIM_PRIVATE_GROUP
    assert dicom_export.PRIVATE_CREATOR is _private.SIM_PRIVATE_CREATOR


def test_creator_string_is_defined_once_in_the_package():
    # docstrings may name it; only one module assigns it as a value
    value = f'= "{_private.SIM_PRIVATE_CREATOR}"'
    holders = sorted(p.relative_to(PKG).as_posix() for p in PKG.rglob("*.py")
                     if value in p.read_text(encoding="utf-8"))
    assert holders == ["io/_private.py"]

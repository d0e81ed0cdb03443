import numpy as np
import pytest


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


@pytest.fixture(autouse=True)
def _private_config_dir(tmp_path_factory, monkeypatch):
    """Keep the per-installation de-identification salt out of the user's real config folder
    (every test: DICOM readers and the simulator's exporter key subjects with it)."""
    monkeypatch.setenv("LAYERSEG_CONFIG_DIR", str(tmp_path_factory.mktemp("layerseg_config")))
    monkeypatch.delenv("LAYERSEG_SALT", raising=False)
    monkeypatch.delenv("LAYERSEG_DEID_SALT", raising=False)

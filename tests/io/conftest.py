import pytest


@pytest.fixture(autouse=True)
def _private_config_dir(tmp_path_factory, monkeypatch):
    """Keep the per-installation de-identification salt out of the user's real config folder."""
    monkeypatch.setenv("LAYERSEG_CONFIG_DIR", str(tmp_path_factory.mktemp("layerseg_config")))
    monkeypatch.delenv("LAYERSEG_SALT", raising=False)
    monkeypatch.delenv("LAYERSEG_DEID_SALT", raising=False)

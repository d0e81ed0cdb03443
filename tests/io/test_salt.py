"""The de-identification salt: the caller's, LAYERSEG_SALT, or random per installation."""

from __future__ import annotations

import re
import stat
from pathlib import Path

import pytest

import layerseg
from layerseg.errors import ConfigError
from layerseg.io import _salt, deidentify_key

PID = "PID-000123"


def test_two_installations_give_different_keys(tmp_path, monkeypatch):
    keys = []
    for name in ("a", "b"):
        monkeypatch.setenv("LAYERSEG_CONFIG_DIR", str(tmp_path / name))
        keys.append(deidentify_key(PID))
    assert keys[0] != keys[1]


def test_one_installation_gives_the_same_key_and_a_private_file(tmp_path, monkeypatch):
    monkeypatch.setenv("LAYERSEG_CONFIG_DIR", str(tmp_path / "cfg"))
    k = deidentify_key(PID)
    assert k == deidentify_key(PID) != deidentify_key("PID-000124")
    f = tmp_path / "cfg" / "salt"
    assert stat.S_IMODE(f.stat().st_mode) == 0o600
    assert len(f.read_text().strip()) == 64  # 256 random bits, hex
    assert not [p for p in f.parent.iterdir() if p.name != "salt"]  # no temporary left behind
    salt = f.read_text().strip()
    assert k == deidentify_key(PID, salt=salt)


def test_config_folder_precedence(tmp_path, monkeypatch):
    monkeypatch.delenv("LAYERSEG_CONFIG_DIR")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    assert _salt.salt_path() == tmp_path / "xdg" / "layerseg" / "salt"
    monkeypatch.delenv("XDG_CONFIG_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert _salt.salt_path() == tmp_path / "home" / ".config" / "layerseg" / "salt"
    monkeypatch.setenv("LAYERSEG_CONFIG_DIR", str(tmp_path / "c"))
    assert _salt.salt_path() == tmp_path / "c" / "salt"


def test_explicit_and_environment_salt_are_reproducible(tmp_path, monkeypatch):
    k = deidentify_key(PID, salt="s3cret")
    monkeypatch.setenv("LAYERSEG_CONFIG_DIR", str(tmp_path / "other"))
    assert deidentify_key(PID, salt="s3cret") == k
    assert not (tmp_path / "other").exists()  # an explicit salt needs no file
    monkeypatch.setenv("LAYERSEG_SALT", "s3cret")
    assert deidentify_key(PID) == k
    assert deidentify_key(PID, salt="other") != k


def test_bad_salts_are_config_errors(tmp_path, monkeypatch):
    with pytest.raises(ConfigError):
        deidentify_key(PID, salt="")
    d = tmp_path / "cfg"
    d.mkdir()
    (d / "salt").write_text("layerseg\n")
    monkeypatch.setenv("LAYERSEG_CONFIG_DIR", str(d))
    with pytest.raises(ConfigError, match=re.escape(str(d / "salt"))):
        deidentify_key(PID)


def test_no_constant_salt_in_the_source():
    src = Path(layerseg.__file__).parent / "io"
    text = (src / "dicom.py").read_text() + (src / "_salt.py").read_text()
    # neither the old public default nor any literal fallback passed to the hash
    assert 'os.environ.get(_DEFAULT_SALT_ENV, "' not in text
    assert not re.search(r"environ\.get\([^)]*,\s*['\"]", text)
    assert not re.search(r"salt\s*=\s*['\"]", text)

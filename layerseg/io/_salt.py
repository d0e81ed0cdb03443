"""The salt of the de-identified subject and study keys (`layerseg.io.deidentify_key`).

A key is a salted hash of an identifier such as a PatientID. Patient IDs are guessable (a clinic's
IDs are often sequential), so with a public salt anyone could hash candidate IDs and re-identify a
subject. The salt is therefore never a constant in the source; it is, first found of:

1. the ``salt=`` the caller gives (reproducible across machines: share it as a secret);
2. the environment variable ``LAYERSEG_SALT`` (``LAYERSEG_DEID_SALT``, its older name, is still
   read);
3. a random per-installation salt, generated with `secrets` on first use and kept in the user's
   configuration folder: ``$LAYERSEG_CONFIG_DIR`` if set, else ``$XDG_CONFIG_HOME/layerseg``, else
   ``~/.config/layerseg``; file ``salt``, mode 0600, written atomically (a second process that
   races the first reads the first's salt rather than replacing it).

Keys made with the installation salt agree on that installation only; to compare keys across
machines, give the same secret salt on each (2 or 1).
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from ..errors import ConfigError

__all__ = ["resolve_salt", "salt_path", "SALT_ENV", "CONFIG_DIR_ENV", "SALT_FILE"]

SALT_ENV = "LAYERSEG_SALT"
"""Environment variable holding the salt."""
_LEGACY_SALT_ENV = "LAYERSEG_DEID_SALT"
CONFIG_DIR_ENV = "LAYERSEG_CONFIG_DIR"
"""Environment variable naming layerseg's configuration folder."""
SALT_FILE = "salt"
"""Name of the per-installation salt file in the configuration folder."""
_SALT_BYTES = 32


def salt_path() -> Path:
    """Where the per-installation salt is kept (the file need not exist yet).

    Returns
    -------
    Path
        ``$LAYERSEG_CONFIG_DIR/salt``, else ``$XDG_CONFIG_HOME/layerseg/salt``, else
        ``~/.config/layerseg/salt``.
    """
    d = os.environ.get(CONFIG_DIR_ENV)
    if d:
        return Path(d) / SALT_FILE
    xdg = os.environ.get("XDG_CONFIG_HOME")
    base = Path(xdg) if xdg else Path.home() / ".config"
    return base / "layerseg" / SALT_FILE


def resolve_salt(salt: str | None = None) -> str:
    """The salt to hash identifiers with (see the module docstring for the order).

    Parameters
    ----------
    salt : str, optional
        The caller's salt; wins over everything else.

    Returns
    -------
    str
        A non-empty salt.

    Raises
    ------
    ConfigError
        The caller's salt is empty or not a string, or the salt file exists but is unreadable or
        malformed, or it cannot be created.
    """
    if salt is not None:
        if not isinstance(salt, str) or not salt:
            raise ConfigError(f"salt must be a non-empty string, got {salt!r}")
        return salt
    for var in (SALT_ENV, _LEGACY_SALT_ENV):
        env = os.environ.get(var)
        if env:
            return env
    return _installation_salt(salt_path())


def _read_salt(path: Path) -> str:
    try:
        text = path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"the de-identification salt file cannot be read ({e}); fix or delete "
                          f"it (keys made with a new salt will differ), or set {SALT_ENV}",
                          path) from e
    if len(text) < 2 * 16 or any(c not in "0123456789abcdef" for c in text):
        raise ConfigError("the de-identification salt file does not hold a hex salt of at least "
                          f"128 bits; fix or delete it, or set {SALT_ENV}", path)
    return text


def _installation_salt(path: Path) -> str:
    if path.exists():
        return _read_salt(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{SALT_FILE}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "w", encoding="ascii") as f:
                f.write(secrets.token_hex(_SALT_BYTES) + "\n")
                f.flush()
                os.fsync(f.fileno())
            os.chmod(tmp, 0o600)  # whatever the umask
            try:
                os.link(tmp, path)  # atomic, and never replaces a salt another process wrote
            except FileExistsError:
                pass
        finally:
            tmp.unlink(missing_ok=True)
    except OSError as e:
        raise ConfigError(f"cannot create the de-identification salt file ({e}); set "
                          f"{SALT_ENV} or {CONFIG_DIR_ENV}, or pass salt=...", path) from e
    return _read_salt(path)

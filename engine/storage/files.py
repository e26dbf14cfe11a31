"""Where the bytes of uploaded files live: a small storage interface and its local folder.

The database holds what a file is (name, size, type, checksum, who and when); the store holds
only its bytes, under an opaque key the engine makes up. No name a person chose ever becomes
part of a path, and a key is checked against its pattern before it is used, so no key can
reach outside the store's folder.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import secrets
import tempfile
from pathlib import Path
from typing import Iterator, Protocol

KEY = re.compile(r"^[0-9a-f]{32}$")
UTC = dt.timezone.utc


class MissingFile(Exception):
    """A key that names no stored file (deleted by hand, or a store from another site)."""


class FileStore(Protocol):
    """Bytes by opaque key. `put` makes the key; keys are never reused."""

    def put(self, data: bytes) -> str: ...

    def get(self, key: str) -> bytes: ...

    def delete(self, key: str) -> None: ...

    def exists(self, key: str) -> bool: ...

    def keys(self) -> Iterator[tuple[str, dt.datetime]]:
        """Every stored key with the time it was written (for the orphan sweep)."""
        ...


def new_key() -> str:
    """A random key: 128 bits, so keys neither collide nor can be guessed."""
    return secrets.token_hex(16)


def _checked(key: str) -> str:
    if not isinstance(key, str) or not KEY.fullmatch(key):
        raise MissingFile(f"not a file key: {key!r}")
    return key


class LocalFileStore:
    """Files in a folder: `<root>/ab/cd/abcd...` (two levels keep folders small)."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)

    def _path(self, key: str) -> Path:
        key = _checked(key)
        return self.root / key[:2] / key[2:4] / key

    def put(self, data: bytes) -> str:
        key = new_key()
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        # written beside its final place and renamed: a reader never sees half a file
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".incoming-")
        try:
            with os.fdopen(handle, "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        return key

    def get(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            raise MissingFile(f"no stored file {key}") from None

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def exists(self, key: str) -> bool:
        try:
            return self._path(key).is_file()
        except MissingFile:
            return False

    def keys(self) -> Iterator[tuple[str, dt.datetime]]:
        if not self.root.is_dir():
            return
        for path in self.root.glob("??/??/*"):
            if KEY.fullmatch(path.name) and path.is_file():
                written = dt.datetime.fromtimestamp(path.stat().st_mtime, UTC)
                yield path.name, written


def files_folder(app_folder: str | None, setting: str | None) -> Path:
    """The local store's folder: $CRM_FILES_DIR, else app.yaml's `files_dir` (relative to
    the site folder), else `files/` in the site folder (the working folder without a site)."""
    explicit = os.environ.get("CRM_FILES_DIR") or setting
    base = Path(app_folder) if app_folder else Path.cwd()
    if explicit:
        path = Path(explicit).expanduser()
        return path if path.is_absolute() else base / path
    return base / "files"

"""The on-disk layout of a workspace, and atomic writes into it.

<workspace>/
  swapdeck.toml
  facesets/<name>/faces/*.png, faceset.sqlite
  models/<name>/...
  jobs/<id>/...
  outputs/
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from engine.errors import BadInputError, NotFoundError, WorkspaceError
from engine.media.paths import printable

# Write errors that mean no room: disk full, file-size limit, quota.
_DISK_FULL = (errno.ENOSPC, errno.EFBIG, errno.EDQUOT)
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
# Owner-only: workspaces hold people's faces.
DIR_MODE = 0o700


def check_name(name: str, what: str = "name") -> str:
    """A faceset/model name is one plain path component."""
    if not _NAME.match(name) or ".." in name:
        raise BadInputError(
            f"{what} {name!r} is not a plain name",
            "use letters, digits, '.', '_' or '-' (no '/', no '..', at most 64 characters)",
        )
    return name


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def atomic_path(target: Path, durable: bool = True) -> Iterator[Path]:
    """Yield a temporary path beside `target`; rename it into place on success.

    On any failure the temporary file is removed and `target` is untouched.
    `durable` also flushes to the disk, so the file survives a power cut, not
    just a killed process.
    """
    target = Path(target)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        if durable:
            with open(tmp, "rb+") as fh:
                os.fsync(fh.fileno())
        os.replace(tmp, target)
        if durable:
            _fsync_dir(target.parent)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def atomic_folder(target: Path) -> Iterator[Path]:
    """Yield a hidden folder beside `target` to fill; rename it into place on success
    (an older `target` is moved aside first, then removed).

    On any failure the hidden folder is removed and `target` is untouched.
    """
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    try:
        yield tmp
        if target.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old.", dir=target.parent))
            os.replace(target, old / target.name)
            os.replace(tmp, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


@contextlib.contextmanager
def disk_full_refused(output: Path) -> Iterator[None]:
    """A write error that means no room, while `output` is written atomically, becomes
    one WorkspaceError; any other error passes as it is."""
    try:
        yield
    except OSError as exc:  # PyAV's write errors are OSErrors too
        if exc.errno not in _DISK_FULL:
            raise
        raise WorkspaceError(
            f"cannot write {printable(output)}: disk full ({exc.strerror})",
            "free disk space and run again; an older OUTPUT there is kept as it was",
        ) from None


def open_private(path: Path, mode: str = "a", **kwargs: Any) -> IO[Any]:
    """open(), creating the file owner-only (0600) whatever the umask: logs hold paths
    and faces' names, and a permissive umask must not make them others' to rewrite."""
    return open(path, mode, opener=lambda p, flags: os.open(p, flags, 0o600), **kwargs)


def atomic_write_bytes(target: Path, data: bytes, durable: bool = True) -> None:
    with atomic_path(target, durable) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(target: Path, text: str) -> None:
    atomic_write_bytes(target, text.encode("utf-8"))


class Workspace:
    """A folder the user owns, laid out as DESIGN.md describes."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root).expanduser().absolute()

    @property
    def config_path(self) -> Path:
        return self.root / "swapdeck.toml"

    @property
    def facesets_dir(self) -> Path:
        return self.root / "facesets"

    @property
    def models_dir(self) -> Path:
        return self.root / "models"

    @property
    def jobs_dir(self) -> Path:
        return self.root / "jobs"

    @property
    def outputs_dir(self) -> Path:
        return self.root / "outputs"

    @property
    def compares_dir(self) -> Path:
        """Where compare reports go unless -o says otherwise."""
        return self.root / "compares"

    def faceset_dir(self, name: str) -> Path:
        return self.facesets_dir / check_name(name, "faceset name")

    def model_dir(self, name: str) -> Path:
        return self.models_dir / check_name(name, "model name")

    def faceset_names(self) -> list[str]:
        if not self.facesets_dir.is_dir():
            return []
        return sorted(
            p.name for p in self.facesets_dir.iterdir() if (p / "faceset.sqlite").is_file()
        )

    def existing_faceset_dir(self, name: str) -> Path:
        path = self.faceset_dir(name)
        if not (path / "faceset.sqlite").is_file():
            known = ", ".join(self.faceset_names()) or "none yet"
            raise NotFoundError(
                f"no faceset {name!r} in workspace {self.root}",
                f"make it with 'swapdeck extract ... -f {name}' (facesets here: {known})",
            )
        return path

    def ensure(self) -> Workspace:
        """Create the workspace if needed and prove it is writable."""
        if self.root.exists() and not self.root.is_dir():
            raise WorkspaceError(
                f"workspace {self.root} is a file, not a folder", "choose a folder for -w"
            )
        try:
            self.root.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
            for sub in (self.facesets_dir, self.models_dir, self.jobs_dir, self.outputs_dir):
                sub.mkdir(exist_ok=True, mode=DIR_MODE)
            with tempfile.NamedTemporaryFile(dir=self.root, prefix=".probe.") as probe:
                probe.write(b"x")
        except OSError as exc:
            raise WorkspaceError(
                f"workspace {self.root} is not writable ({exc.strerror or exc})",
                "choose a folder you can write to with -w, or fix its permissions",
            ) from exc
        return self

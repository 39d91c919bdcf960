"""The faceset manifest: one SQLite file (WAL) beside the aligned face images.

Invariant after `open` (which reconciles): every face row has its PNG and every
PNG in faces/ has its row. Writers put the PNG in place first (atomically) and
then commit its row with the frame it came from, so a crash can at worst leave
an orphan PNG, which the next open removes.

A manifest of an older schema is upgraded in place when opened: every migration from
its version to SCHEMA_VERSION runs in one transaction, so it ends either fully
upgraded or exactly as it was.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.errors import BadInputError, CorruptError, WorkspaceError
from engine.media.paths import printable
from engine.workspace import DIR_MODE

SCHEMA_VERSION = 2

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS sources (
    id INTEGER PRIMARY KEY,
    path TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    frames INTEGER NOT NULL,
    fps REAL,
    width INTEGER,
    height INTEGER,
    added REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS frames (
    source_id INTEGER NOT NULL REFERENCES sources(id),
    frame INTEGER NOT NULL,
    faces INTEGER NOT NULL,
    PRIMARY KEY (source_id, frame)
);
-- The face tracker's state after the last committed frame of each video, so a
-- resumed run follows faces exactly as an uninterrupted one would.
CREATE TABLE IF NOT EXISTS track_state (
    source_id INTEGER PRIMARY KEY REFERENCES sources(id),
    frame INTEGER NOT NULL,
    tracks TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS faces (
    id INTEGER PRIMARY KEY,
    source_id INTEGER NOT NULL REFERENCES sources(id),
    frame INTEGER NOT NULL,
    idx INTEGER NOT NULL,
    file TEXT NOT NULL UNIQUE,
    box TEXT NOT NULL,
    landmarks BLOB NOT NULL,
    matrix BLOB NOT NULL,
    embedding BLOB,
    mask BLOB,
    blur REAL NOT NULL,
    yaw REAL NOT NULL,
    pitch REAL NOT NULL,
    roll REAL NOT NULL,
    score REAL NOT NULL,
    tracked INTEGER NOT NULL,
    track INTEGER,
    label BLOB,
    UNIQUE (source_id, frame, idx)
);
"""


@dataclass
class FaceRecord:
    """One aligned face, as stored."""

    source_id: int
    frame: int
    idx: int
    file: str
    box: list[float]
    landmarks: np.ndarray  # (68, 2) float32, frame pixels
    matrix: np.ndarray  # (2, 3) float64, frame -> crop
    embedding: np.ndarray | None  # (128,) float32
    mask: bytes | None  # PNG of the hull mask
    blur: float
    yaw: float
    pitch: float
    roll: float
    score: float
    tracked: bool
    id: int | None = None
    # The tracker's id on video: faces of one source with the same id are one person
    # followed from frame to frame (ids are never reused within a source). None for images.
    track: int | None = None
    # A label mask the user imported: PNG, grayscale, the crop's size, 255 = the face
    # itself, 0 = covered or not face. Training takes it over synthesised targets.
    label: bytes | None = None


def _blob(array: np.ndarray | None, dtype: type) -> bytes | None:
    return None if array is None else np.ascontiguousarray(array, dtype=dtype).tobytes()


def _array(blob: bytes | None, dtype: type, shape: tuple[int, ...]) -> np.ndarray | None:
    if blob is None:
        return None
    return np.frombuffer(blob, dtype=dtype).reshape(shape).copy()


_MAGIC = b"SQLite format 3\x00"
_PNG = b"\x89PNG\r\n\x1a\n"
_TABLES = ("meta", "sources", "frames", "faces")
_RESTORE = "restore it from a backup or extract into a new faceset name"


def _unreadable(db: Path, exc: Exception) -> CorruptError:
    why = " ".join(str(exc).split())[:160]  # SQLite may quote a damaged schema, newlines too
    return CorruptError(f"{db} is not a readable faceset database ({why})", _RESTORE)


def _check_file(db: Path) -> None:
    """Refuse a manifest that is empty, not SQLite or cut short, from its header alone."""
    if not db.is_file():
        raise CorruptError(f"{db} is not a file", _RESTORE)
    try:
        size = db.stat().st_size
        with open(db, "rb") as fh:
            head = fh.read(100)
    except OSError as exc:
        raise WorkspaceError(
            f"cannot read {db} ({exc.strerror})", "check its permissions"
        ) from None
    if size == 0:
        raise CorruptError(f"{db} is empty (0 bytes), not a faceset database", _RESTORE)
    if len(head) < 100 or not head.startswith(_MAGIC):
        raise CorruptError(f"{db} is not a faceset database (not SQLite)", _RESTORE)
    page_size = int.from_bytes(head[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    pages = int.from_bytes(head[28:32], "big")
    # The header's page count is trusted only when its validity stamp matches, and only
    # with no WAL beside it (a writer's checkpoint may be growing the file right now).
    counted = head[24:28] == head[92:96] and not db.with_name(db.name + "-wal").exists()
    if counted and pages and size < pages * page_size:
        raise CorruptError(f"{db} is truncated ({size} of its {pages * page_size} bytes)", _RESTORE)


def _columns() -> dict[str, list[str]]:
    """Each table's columns, as _SCHEMA makes them."""
    conn = sqlite3.connect(":memory:")
    try:
        conn.executescript(_SCHEMA)
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        return {t: [r[1] for r in conn.execute(f"PRAGMA table_info({t})")] for t in tables}
    finally:
        conn.close()


_COLUMNS = _columns()
_V1_FACES = [c for c in _COLUMNS["faces"] if c not in ("track", "label")]

# Every layout a manifest of each version was written with: the tables it must have,
# and each table's possible columns. Version 1 was written three ways: the first
# release kept the tracker's state in frames.tracks (no track_state table), and
# faces.track came later, without a version of its own.
_LAYOUTS: dict[int, tuple[tuple[str, ...], dict[str, list[list[str]]]]] = {
    1: (
        ("meta", "sources", "frames", "faces"),
        {
            "meta": [_COLUMNS["meta"]],
            "sources": [_COLUMNS["sources"]],
            "frames": [_COLUMNS["frames"], [*_COLUMNS["frames"], "tracks"]],
            "track_state": [_COLUMNS["track_state"]],
            "faces": [_V1_FACES, [*_V1_FACES, "track"]],
        },
    ),
    2: (tuple(_COLUMNS), {t: [c] for t, c in _COLUMNS.items()}),
}


def _have(conn: sqlite3.Connection, table: str) -> list[str]:
    return [r[1] for r in conn.execute(f"PRAGMA table_info({table})")]


def _to_v2(conn: sqlite3.Connection) -> None:
    """Version 2: faces.label, the imported label masks (NULL: none yet).

    Any layout of version 1 is brought level first: faces.track (NULL: convert links
    such faces by overlap) and track_state, whose place the first release's
    frames.tracks column held (dropped, not carried over: a resumed extract starts
    its tracks afresh, as over a video never seen).
    """
    if "track" not in _have(conn, "faces"):
        conn.execute("ALTER TABLE faces ADD COLUMN track INTEGER")
    conn.execute("ALTER TABLE faces ADD COLUMN label BLOB")
    # Literal SQL, not _SCHEMA's: a migration makes the layout of its own version.
    conn.execute(
        "CREATE TABLE IF NOT EXISTS track_state ("
        "source_id INTEGER PRIMARY KEY REFERENCES sources(id), "
        "frame INTEGER NOT NULL, tracks TEXT NOT NULL)"
    )
    if "tracks" in _have(conn, "frames"):
        conn.execute("ALTER TABLE frames DROP COLUMN tracks")


# The migrations, by the version each one makes from the one before it. They run with
# conn.execute only (executescript would commit the transaction they run in).
_MIGRATIONS: dict[int, Callable[[sqlite3.Connection], None]] = {2: _to_v2}


def _version(conn: sqlite3.Connection, db: Path) -> int:
    """The schema version the manifest says it has (none written: version 1)."""
    row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    if row is None:
        return 1  # a faceset from before versions were written
    version = row[0]
    if not isinstance(version, str) or not version.isdigit():
        raise CorruptError(
            f"{db.parent} has an unreadable schema version ({str(version)[:40]!r})", _RESTORE
        )
    if int(version) > SCHEMA_VERSION:
        raise CorruptError(
            f"{db.parent} was written by a newer swapdeck (schema {int(version)})",
            "upgrade swapdeck to read it",
        )
    if int(version) not in _LAYOUTS:
        raise CorruptError(f"{db.parent} has an unknown schema version ({version})", _RESTORE)
    return int(version)


def _check_tables(conn: sqlite3.Connection, db: Path) -> int:
    """The manifest's schema version, once its tables are proved to be one of the
    layouts that version was written with, before anything else is read or written."""
    names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    missing = [t for t in _TABLES if t not in names]
    if missing:
        raise CorruptError(
            f"{db} is an SQLite file but not a faceset (no {', '.join(missing)} table)", _RESTORE
        )
    if _have(conn, "meta") != _COLUMNS["meta"]:
        raise CorruptError(f"{db}: table meta does not have its columns", _RESTORE)
    version = _version(conn, db)
    required, layouts = _LAYOUTS[version]
    for table in required:
        if table not in names:
            raise CorruptError(f"{db}: schema {version} but no {table} table", _RESTORE)
    for table in sorted(names & layouts.keys()):
        if _have(conn, table) not in layouts[table]:
            raise CorruptError(f"{db}: table {table} does not have its columns", _RESTORE)
    return version


def _upgrade(conn: sqlite3.Connection, db: Path) -> None:
    """Migrate an older manifest to SCHEMA_VERSION in place, in one transaction.

    SQLite's DDL is transactional: a failure or a kill part-way leaves the old
    version whole. The version is read again under the write lock, so of two
    processes opening it at once only the first migrates.
    """
    conn.execute("BEGIN IMMEDIATE")
    try:
        version = _check_tables(conn, db)
        for target in range(version + 1, SCHEMA_VERSION + 1):
            _MIGRATIONS[target](conn)
        if version < SCHEMA_VERSION:
            conn.execute(
                "INSERT INTO meta(key, value) VALUES('schema_version', ?) "
                "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (str(SCHEMA_VERSION),),
            )
            _check_tables(conn, db)  # the migrations made exactly today's layout
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def _create(db: Path) -> None:
    """Make a new, empty manifest under a temporary name and link it into place whole.

    A killed run never leaves a half-made (empty) faceset.sqlite, so an empty one is
    always someone else's file. Linking, not renaming, never replaces a manifest that
    another process made in the meantime.
    """
    fd, name = tempfile.mkstemp(prefix=f".{db.name}.", suffix=".tmp", dir=db.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        conn = sqlite3.connect(tmp, isolation_level=None)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.executescript(_SCHEMA)
            conn.execute(
                "INSERT INTO meta(key, value) VALUES('schema_version', ?)", (str(SCHEMA_VERSION),)
            )
        finally:
            conn.close()
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        try:
            os.link(tmp, db)
        except FileExistsError:
            pass
        except OSError:  # a filesystem without hard links
            if not db.exists():
                os.replace(tmp, db)
    finally:
        tmp.unlink(missing_ok=True)


def source_key(path: Path) -> str:
    """A source as stored: its absolute path, as text that SQLite and JSON can hold
    (sqlite3 refuses the lone surrogates of a name that is not UTF-8)."""
    return printable(path.resolve())


def _plain_file(name: object) -> str:
    """A face's file is one plain name in faces/: never a path out of the faceset."""
    if not isinstance(name, str) or not name or "/" in name or "\\" in name or name[0] == ".":
        raise ValueError(f"file name {str(name)[:60]!r} is not a plain name")
    return name


def _number(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{value!r} is not a number")
    return float(value)


def _integer(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{value!r} is not an integer")
    return value


def _bytes(value: object, size: int | None) -> bytes:
    if not isinstance(value, bytes) or (size is not None and len(value) != size):
        raise ValueError("a stored array has the wrong size")
    return value


def _record(row: tuple) -> FaceRecord:
    """One faces row as a FaceRecord, every field checked (the file may be damaged)."""
    box = json.loads(_bytes(row[5], None) if isinstance(row[5], bytes) else row[5])
    if not isinstance(box, list) or len(box) != 4:
        raise ValueError("box is not four numbers")
    return FaceRecord(
        id=_integer(row[0]),
        source_id=_integer(row[1]),
        frame=_integer(row[2]),
        idx=_integer(row[3]),
        file=_plain_file(row[4]),
        box=[_number(v) for v in box],
        landmarks=_array(_bytes(row[6], 68 * 2 * 4), np.float32, (68, 2)),  # type: ignore[arg-type]
        matrix=_array(_bytes(row[7], 2 * 3 * 8), np.float64, (2, 3)),  # type: ignore[arg-type]
        embedding=None if row[8] is None else _array(_bytes(row[8], 128 * 4), np.float32, (128,)),
        mask=None if row[9] is None else _bytes(row[9], None),
        blur=_number(row[10]),
        yaw=_number(row[11]),
        pitch=_number(row[12]),
        roll=_number(row[13]),
        score=_number(row[14]),
        tracked=bool(_integer(row[15])),
        track=None if row[16] is None else _integer(row[16]),
        label=None if row[17] is None else _bytes(row[17], None),
    )


class _Rows:
    """A statement's rows, all fetched: a damaged page fails inside _Db, not later."""

    def __init__(self, rows: list[tuple], lastrowid: int | None, rowcount: int = -1) -> None:
        self._rows = rows
        self.lastrowid = lastrowid
        self.rowcount = rowcount

    def fetchall(self) -> list[tuple]:
        return self._rows

    def fetchone(self) -> tuple | None:
        return self._rows[0] if self._rows else None


class _Db:
    """The manifest's connection. SQLite's "malformed" and "not a database" errors
    become one CorruptError; the others (locked, disk full, a broken constraint) pass."""

    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        self._conn = conn
        self.path = path

    @contextlib.contextmanager
    def _checked(self) -> Iterator[None]:
        try:
            yield
        except (sqlite3.OperationalError, sqlite3.IntegrityError, sqlite3.ProgrammingError):
            raise
        except (sqlite3.DatabaseError, UnicodeDecodeError) as exc:  # text that is not UTF-8
            raise _unreadable(self.path, exc) from None

    def execute(self, sql: str, params: Iterable[object] = ()) -> _Rows:
        with self._checked():
            cur = self._conn.execute(sql, tuple(params))
            return _Rows(cur.fetchall(), cur.lastrowid, cur.rowcount)

    def executemany(self, sql: str, rows: Iterable[Iterable[object]]) -> None:
        with self._checked():
            self._conn.executemany(sql, rows)

    def close(self) -> None:
        self._conn.close()


class Faceset:
    """A faceset folder: faces/*.png + faceset.sqlite."""

    def __init__(self, folder: Path, conn: sqlite3.Connection) -> None:
        self.folder = folder
        self.faces_dir = folder / "faces"
        self._conn = _Db(conn, folder / "faceset.sqlite")

    # ---- opening -------------------------------------------------------------------------

    @classmethod
    def open(cls, folder: Path, create: bool = False) -> Faceset:
        db = folder / "faceset.sqlite"
        new = not db.exists()
        if new and not create:
            raise CorruptError(f"{folder} has no faceset.sqlite", "extract into it again")
        if not new:
            # Looked at before anything is written: a file that is not ours stays as it was.
            _check_file(db)
        try:
            folder.mkdir(exist_ok=True, mode=DIR_MODE)
            (folder / "faces").mkdir(exist_ok=True, mode=DIR_MODE)
            if new:
                _create(db)
            conn = sqlite3.connect(db, timeout=30.0, isolation_level=None)
        except sqlite3.DatabaseError as exc:
            raise _unreadable(db, exc) from None
        except OSError as exc:
            raise WorkspaceError(
                f"cannot write {folder} ({exc.strerror})", "check space and permissions"
            ) from None
        try:
            version = _check_tables(conn, db)
            faceset = cls(folder, conn)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA foreign_keys=ON")
            if version < SCHEMA_VERSION:
                _upgrade(conn, db)
            faceset._check_meta()
            faceset.reconcile()
        except sqlite3.OperationalError as exc:
            conn.close()
            if any(w in str(exc) for w in ("locked", "readonly", "disk I/O", "full", "open")):
                raise WorkspaceError(
                    f"cannot use {db} ({exc})", "check space and permissions, then run again"
                ) from None
            raise _unreadable(db, exc) from None
        except (sqlite3.DatabaseError, UnicodeDecodeError) as exc:
            conn.close()
            raise _unreadable(db, exc) from None
        except BaseException:
            conn.close()
            raise
        return faceset

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> Faceset:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _check_meta(self) -> None:
        """Crop size and coverage are read as numbers everywhere: prove they are."""
        for key, kind in (("size", int), ("coverage", float)):
            value = self.meta(key)
            if value is None:
                continue
            try:
                number = kind(value)
            except (TypeError, ValueError):
                number = None
            if number is None or not 0 < number < 1e6:
                raise CorruptError(
                    f"{self.folder}: faceset.sqlite holds an unreadable {key} "
                    f"({str(value)[:40]!r})",
                    "restore it from a backup or extract into a new faceset name",
                )

    def reconcile(self) -> tuple[int, int]:
        """Remove PNGs without rows and rows without PNGs; returns their counts."""
        on_disk = {p.name for p in self.faces_dir.glob("*.png")}
        for stray in self.faces_dir.glob(".*.tmp"):
            stray.unlink(missing_ok=True)
        rows = dict(self._conn.execute("SELECT file, id FROM faces").fetchall())
        orphans = on_disk - rows.keys()
        for name in orphans:
            (self.faces_dir / name).unlink(missing_ok=True)
        missing = [rows[name] for name in rows.keys() - on_disk]
        if missing:
            with self.transaction():
                self._conn.executemany("DELETE FROM faces WHERE id = ?", [(i,) for i in missing])
        return len(orphans), len(missing)

    # ---- meta and sources ----------------------------------------------------------------

    def meta(self, key: str) -> str | None:
        row = self._conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def set_meta(self, key: str, value: str) -> None:
        self._conn.execute(
            "INSERT INTO meta(key, value) VALUES(?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    def check_geometry(self, size: int, coverage: float) -> None:
        """A faceset holds crops of one size and coverage; set it once, then insist on it."""
        have_size, have_cov = self.meta("size"), self.meta("coverage")
        if have_size is None:
            self.set_meta("size", str(size))
            self.set_meta("coverage", repr(coverage))
            return
        if int(have_size) != size or abs(float(have_cov or 0) - coverage) > 1e-6:
            raise BadInputError(
                f"faceset {self.folder.name} holds {have_size} px crops at coverage {have_cov}, "
                f"not {size} px at {coverage}",
                f"use --size {have_size} --coverage {have_cov}, or a new faceset name",
            )

    @property
    def size(self) -> int:
        return int(self.meta("size") or 0)

    def source_id(
        self,
        path: Path,
        kind: str,
        frames: int,
        fps: float | None = None,
        width: int | None = None,
        height: int | None = None,
    ) -> int:
        key = source_key(path)
        row = self._conn.execute("SELECT id FROM sources WHERE path = ?", (key,)).fetchone()
        if row:
            return int(row[0])
        cur = self._conn.execute(
            "INSERT INTO sources(path, kind, frames, fps, width, height, added) "
            "VALUES(?, ?, ?, ?, ?, ?, ?)",
            (key, kind, frames, fps, width, height, time.time()),
        )
        return int(cur.lastrowid or 0)

    def sources(self) -> list[dict[str, object]]:
        cur = self._conn.execute(
            "SELECT s.id, s.path, s.kind, s.frames, "
            "(SELECT COUNT(*) FROM frames f WHERE f.source_id = s.id), "
            "(SELECT COUNT(*) FROM faces x WHERE x.source_id = s.id) FROM sources s ORDER BY s.id"
        )
        keys = ("id", "path", "kind", "frames", "frames_done", "faces")
        return [dict(zip(keys, row, strict=True)) for row in cur.fetchall()]

    # ---- frames --------------------------------------------------------------------------

    def done_frames(self, source_id: int) -> frozenset[int]:
        cur = self._conn.execute("SELECT frame FROM frames WHERE source_id = ?", (source_id,))
        return frozenset(r[0] for r in cur.fetchall())

    def tracks_before(self, source_id: int, frame: int) -> list[dict[str, object]]:
        """The tracker state saved with the last done frame, if that came before `frame`."""
        row = self._conn.execute(
            "SELECT tracks FROM track_state WHERE source_id = ? AND frame < ?",
            (source_id, frame),
        ).fetchone()
        if not row:
            return []
        try:
            tracks = json.loads(row[0])
        except (TypeError, ValueError, RecursionError):
            tracks = None
        if not isinstance(tracks, list) or not all(isinstance(x, dict) for x in tracks):
            raise CorruptError(f"{self._conn.path}: the saved face tracks are damaged", _RESTORE)
        return tracks

    def last_track(self, source_id: int) -> int:
        """The highest track id stored for a source (-1 for none): a resumed run's new
        tracks get higher ones, so one id never names two people of a video."""
        row = self._conn.execute(
            "SELECT MAX(track) FROM faces WHERE source_id = ?", (source_id,)
        ).fetchone()
        value = row[0] if row else None
        return value if isinstance(value, int) and not isinstance(value, bool) else -1

    def commit_frame(
        self,
        source_id: int,
        frame: int,
        faces: Iterable[FaceRecord],
        tracks: list[dict[str, object]] | None = None,
    ) -> None:
        """Record a finished frame and its faces in one transaction (PNGs already written)."""
        faces = list(faces)
        with self.transaction():
            self._conn.executemany(
                "INSERT INTO faces(source_id, frame, idx, file, box, landmarks, matrix, "
                "embedding, mask, blur, yaw, pitch, roll, score, tracked, track, label) "
                "VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        f.source_id,
                        f.frame,
                        f.idx,
                        f.file,
                        json.dumps(f.box),
                        _blob(f.landmarks, np.float32),
                        _blob(f.matrix, np.float64),
                        _blob(f.embedding, np.float32),
                        f.mask,
                        f.blur,
                        f.yaw,
                        f.pitch,
                        f.roll,
                        f.score,
                        int(f.tracked),
                        f.track,
                        f.label,
                    )
                    for f in faces
                ],
            )
            self._conn.execute(
                "INSERT INTO frames(source_id, frame, faces) VALUES(?, ?, ?)",
                (source_id, frame, len(faces)),
            )
            if tracks is not None:
                self._conn.execute(
                    "INSERT INTO track_state(source_id, frame, tracks) VALUES(?, ?, ?) "
                    "ON CONFLICT(source_id) DO UPDATE SET frame = excluded.frame, "
                    "tracks = excluded.tracks",
                    (source_id, frame, json.dumps(tracks)),
                )

    def transaction(self) -> _Transaction:
        return _Transaction(self._conn)

    # ---- faces ---------------------------------------------------------------------------

    _COLUMNS = (
        "id, source_id, frame, idx, file, box, landmarks, matrix, embedding, mask, "
        "blur, yaw, pitch, roll, score, tracked, track, label"
    )

    def faces(self, where: str = "", params: tuple[object, ...] = ()) -> Iterator[FaceRecord]:
        sql = f"SELECT {self._COLUMNS} FROM faces {where} ORDER BY id"
        for row in self._conn.execute(sql, params).fetchall():
            try:
                yield _record(row)
            except (TypeError, ValueError, KeyError, RecursionError) as exc:
                raise CorruptError(
                    f"{self._conn.path}: face row {row[0]!r} is damaged ({exc})", _RESTORE
                ) from None

    def count(self) -> int:
        return int(self._conn.execute("SELECT COUNT(*) FROM faces").fetchone()[0])

    def labelled_count(self) -> int:
        """How many faces hold an imported label mask."""
        row = self._conn.execute("SELECT COUNT(*) FROM faces WHERE label IS NOT NULL").fetchone()
        return int(row[0])

    def set_labels(self, pairs: Iterable[tuple[int, bytes | None]]) -> int:
        """Store label masks (face id, PNG bytes), or clear them (None), in one
        transaction: all of them or none. Returns how many faces were changed (a face
        deleted meanwhile is skipped)."""
        pairs = list(pairs)
        for face_id, label in pairs:
            if label is not None and not (isinstance(label, bytes) and label[:8] == _PNG):
                raise ValueError(f"the label of face {face_id} is not PNG bytes")
        changed = 0
        with self.transaction():
            for face_id, label in pairs:
                changed += max(
                    self._conn.execute(
                        "UPDATE faces SET label = ? WHERE id = ?", (label, face_id)
                    ).rowcount,
                    0,
                )
        return changed

    def column(self, name: str) -> np.ndarray:
        if name not in {"blur", "yaw", "pitch", "roll", "score"}:
            raise ValueError(name)
        rows = self._conn.execute(f"SELECT {name} FROM faces ORDER BY id").fetchall()
        return np.array([r[0] for r in rows], dtype=np.float64)

    def delete_faces(self, ids: Iterable[int]) -> list[str]:
        """Remove faces: rows first, then files, so a crash leaves only orphans to sweep."""
        ids = list(ids)
        files = []
        with self.transaction():
            for face_id in ids:
                row = self._conn.execute(
                    "SELECT file FROM faces WHERE id = ?", (face_id,)
                ).fetchone()
                if row:
                    files.append(row[0])
                    self._conn.execute("DELETE FROM faces WHERE id = ?", (face_id,))
        for name in files:
            # Only ever a file inside faces/, whatever a damaged manifest says.
            with contextlib.suppress(ValueError):
                (self.faces_dir / _plain_file(name)).unlink(missing_ok=True)
        return files


class _Transaction:
    def __init__(self, conn: _Db) -> None:
        self._conn = conn

    def __enter__(self) -> None:
        self._conn.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, *_: object) -> None:
        self._conn.execute("ROLLBACK" if exc_type else "COMMIT")

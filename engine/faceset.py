"""The faceset manifest: one SQLite file (WAL) beside the aligned face images.

Invariant after `open` (which reconciles): every face row has its PNG and every
PNG in faces/ has its row. Writers put the PNG in place first (atomically) and
then commit its row with the frame it came from, so a crash can at worst leave
an orphan PNG, which the next open removes.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.errors import BadInputError, CorruptError, WorkspaceError
from engine.workspace import DIR_MODE

SCHEMA_VERSION = 1

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


def _blob(array: np.ndarray | None, dtype: type) -> bytes | None:
    return None if array is None else np.ascontiguousarray(array, dtype=dtype).tobytes()


def _array(blob: bytes | None, dtype: type, shape: tuple[int, ...]) -> np.ndarray | None:
    if blob is None:
        return None
    return np.frombuffer(blob, dtype=dtype).reshape(shape).copy()


class Faceset:
    """A faceset folder: faces/*.png + faceset.sqlite."""

    def __init__(self, folder: Path, conn: sqlite3.Connection) -> None:
        self.folder = folder
        self.faces_dir = folder / "faces"
        self._conn = conn

    # ---- opening -------------------------------------------------------------------------

    @classmethod
    def open(cls, folder: Path, create: bool = False) -> Faceset:
        db = folder / "faceset.sqlite"
        if not db.exists() and not create:
            raise CorruptError(f"{folder} has no faceset.sqlite", "extract into it again")
        try:
            (folder / "faces").mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
            conn = sqlite3.connect(db, timeout=30.0, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.executescript(_SCHEMA)
        except sqlite3.DatabaseError as exc:
            raise CorruptError(
                f"{db} is not a readable faceset database ({exc})",
                "restore it from a backup or extract into a new faceset name",
            ) from None
        except OSError as exc:
            raise WorkspaceError(
                f"cannot write {folder} ({exc.strerror})", "check space and permissions"
            ) from None
        faceset = cls(folder, conn)
        faceset._check_version()
        faceset.reconcile()
        return faceset

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> Faceset:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _check_version(self) -> None:
        version = self.meta("schema_version")
        if version is None:
            self.set_meta("schema_version", str(SCHEMA_VERSION))
        elif not version.isdigit() or int(version) > SCHEMA_VERSION:
            raise CorruptError(
                f"{self.folder} was written by a newer swapdeck (schema {version})",
                "upgrade swapdeck to read it",
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
        key = str(path.resolve())
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
        return json.loads(row[0]) if row else []

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
                "embedding, mask, blur, yaw, pitch, roll, score, tracked) "
                "VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
        "blur, yaw, pitch, roll, score, tracked"
    )

    def faces(self, where: str = "", params: tuple[object, ...] = ()) -> Iterator[FaceRecord]:
        sql = f"SELECT {self._COLUMNS} FROM faces {where} ORDER BY id"
        for row in self._conn.execute(sql, params).fetchall():
            yield FaceRecord(
                id=row[0],
                source_id=row[1],
                frame=row[2],
                idx=row[3],
                file=row[4],
                box=json.loads(row[5]),
                landmarks=_array(row[6], np.float32, (68, 2)),  # type: ignore[arg-type]
                matrix=_array(row[7], np.float64, (2, 3)),  # type: ignore[arg-type]
                embedding=_array(row[8], np.float32, (128,)),
                mask=row[9],
                blur=row[10],
                yaw=row[11],
                pitch=row[12],
                roll=row[13],
                score=row[14],
                tracked=bool(row[15]),
            )

    def count(self) -> int:
        return int(self._conn.execute("SELECT COUNT(*) FROM faces").fetchone()[0])

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
            (self.faces_dir / name).unlink(missing_ok=True)
        return files


class _Transaction:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def __enter__(self) -> None:
        self._conn.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, *_: object) -> None:
        self._conn.execute("ROLLBACK" if exc_type else "COMMIT")

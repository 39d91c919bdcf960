"""The faceset manifest's schema migration: version 1 manifests, made with the exact SQL
the released code ran, are upgraded in place to version 2 in one transaction."""

from __future__ import annotations

import hashlib
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

import engine.faceset as manifest
from engine.errors import CorruptError
from engine.faceset import SCHEMA_VERSION, Faceset

# Version 1 as engine/faceset.py created it from commit 0555e39 on (its CREATE statements,
# copied from git history). faces.track was added later without a new version number.
V1 = """
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
# Commit 6373c75's: the same, with faces.track (its schema_version still 1).
V1_TRACK = V1.replace(
    "    tracked INTEGER NOT NULL,\n", "    tracked INTEGER NOT NULL,\n    track INTEGER,\n"
)
# The first release's (4f55ae3): tracker state in frames.tracks, no track_state table.
V1_FIRST = """
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
    tracks TEXT NOT NULL DEFAULT '[]',
    PRIMARY KEY (source_id, frame)
);
""" + V1[V1.index("CREATE TABLE IF NOT EXISTS faces") :]

LAYOUTS = {"first": V1_FIRST, "before-track": V1, "with-track": V1_TRACK}
RNG = np.random.default_rng(0)
LANDMARKS = RNG.random((68, 2), dtype=np.float32) * 64
MATRIX = RNG.random((2, 3))


def _make_v1(folder: Path, layout: str, version: str | None = "1") -> None:
    """A version 1 faceset: two faces of one video frame, their PNGs, WAL as it was made."""
    (folder / "faces").mkdir(parents=True)
    conn = sqlite3.connect(folder / "faceset.sqlite")
    conn.execute("PRAGMA journal_mode=WAL")
    conn.executescript(LAYOUTS[layout])
    meta = {"size": "64", "coverage": "0.75"} | ({"schema_version": version} if version else {})
    conn.executemany("INSERT INTO meta VALUES (?, ?)", meta.items())
    conn.execute("INSERT INTO sources(path, kind, frames, added) VALUES ('/v.mp4', 'video', 9, 0)")
    conn.execute("INSERT INTO frames(source_id, frame, faces) VALUES (1, 3, 2)")
    has_track = layout == "with-track"
    for idx in range(2):
        conn.execute(
            "INSERT INTO faces(source_id, frame, idx, file, box, landmarks, matrix, embedding, "
            f"mask, blur, yaw, pitch, roll, score, tracked{', track' if has_track else ''}) "
            f"VALUES (1, 3, ?, ?, '[1, 2, 30, 40]', ?, ?, NULL, NULL, 5.5, 1, 2, 3, 0.9, 1"
            f"{', ?' if has_track else ''})",
            (idx, f"0001-000003_{idx}.png", LANDMARKS.tobytes(), MATRIX.tobytes())
            + ((7 + idx,) if has_track else ()),
        )
        face = RNG.integers(0, 255, (64, 64, 3), dtype=np.uint8)
        (folder / "faces" / f"0001-000003_{idx}.png").write_bytes(cv2.imencode(".png", face)[1])
    conn.commit()
    conn.close()


def _state(folder: Path) -> tuple[str | None, list[str], int]:
    """The manifest as plain SQLite sees it: its schema version, faces' columns, rows."""
    conn = sqlite3.connect(folder / "faceset.sqlite")
    try:
        row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        columns = [r[1] for r in conn.execute("PRAGMA table_info(faces)")]
        rows = conn.execute("SELECT COUNT(*) FROM faces").fetchone()[0]
        return (row[0] if row else None), columns, rows
    finally:
        conn.close()


@pytest.mark.parametrize(
    ("layout", "version"), [("first", None), ("before-track", "1"), ("with-track", "1")]
)
def test_a_version_1_faceset_is_upgraded_in_place(tmp_path: Path, layout: str, version) -> None:
    folder = tmp_path / "old"
    _make_v1(folder, layout, version)
    inode = (folder / "faceset.sqlite").stat().st_ino
    with Faceset.open(folder) as faceset:
        faces = list(faceset.faces())
        assert [f.file for f in faces] == ["0001-000003_0.png", "0001-000003_1.png"]
        for f in faces:
            np.testing.assert_array_equal(f.landmarks, LANDMARKS)
            np.testing.assert_array_equal(f.matrix, MATRIX)
            assert (f.box, f.blur, f.tracked, f.label) == ([1, 2, 30, 40], 5.5, True, None)
        if layout == "with-track":
            assert [f.track for f in faces] == [7, 8] and faceset.last_track(1) == 8
        else:  # no track known: convert links them by overlap, as before
            assert [f.track for f in faces] == [None, None] and faceset.last_track(1) == -1
        assert faceset.done_frames(1) == {3} and faceset.tracks_before(1, 4) == []
        assert faceset.labelled_count() == 0 and faceset.size == 64
        # The new column takes labels; the upgraded manifest writes like a new one.
        assert faceset.set_labels(
            [(faces[0].id, cv2.imencode(".png", np.zeros((64, 64)))[1].tobytes())]
        )
        faceset.commit_frame(1, 4, [], tracks=[{"id": 9}])
        assert faceset.tracks_before(1, 5) == [{"id": 9}]
    assert (folder / "faceset.sqlite").stat().st_ino == inode  # the same file, rewritten
    assert _state(folder) == (str(SCHEMA_VERSION), list(manifest._COLUMNS["faces"]), 2)
    assert manifest._COLUMNS["faces"][-1] == "label"
    with Faceset.open(folder) as faceset:  # and it opens again as it is
        assert faceset.labelled_count() == 1 and faceset.count() == 2


def _failing(conn: sqlite3.Connection) -> None:
    conn.execute("ALTER TABLE faces ADD COLUMN label BLOB")
    conn.execute("CREATE TABLE half (x)")
    raise RuntimeError("migration failed half-way")


KILL = """
import os, sys
import engine.faceset as manifest
def kill(conn):
    conn.execute("ALTER TABLE faces ADD COLUMN label BLOB")
    os._exit(9)
manifest._MIGRATIONS = {2: kill}
manifest.Faceset.open(__import__("pathlib").Path(sys.argv[1]))
"""


def test_a_failed_or_killed_migration_leaves_version_1_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "old"
    _make_v1(folder, "before-track")
    before = _state(folder)
    assert before[0] == "1" and "label" not in before[1]
    monkeypatch.setattr(manifest, "_MIGRATIONS", {2: _failing})
    with pytest.raises(RuntimeError, match="half-way"):
        Faceset.open(folder)
    assert _state(folder) == before
    killed = subprocess.run([sys.executable, "-c", KILL, str(folder)], timeout=60)
    assert killed.returncode == 9
    assert _state(folder) == before
    monkeypatch.undo()
    with Faceset.open(folder) as faceset:
        assert faceset.count() == 2
    assert _state(folder)[0] == str(SCHEMA_VERSION)


def test_two_openers_at_once_migrate_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "old"
    _make_v1(folder, "with-track")
    runs = []
    both_started = threading.Barrier(2)

    def counted(conn: sqlite3.Connection) -> None:
        runs.append(1)
        time.sleep(0.2)  # the other opener has read version 1 and waits for the lock
        manifest._to_v2(conn)

    monkeypatch.setattr(manifest, "_MIGRATIONS", {2: counted})
    errors: list[BaseException] = []

    def opener() -> None:
        both_started.wait()
        try:
            Faceset.open(folder).close()
        except BaseException as exc:  # reported by the assert below
            errors.append(exc)

    threads = [threading.Thread(target=opener) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors and len(runs) == 1


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_newer_or_mislabelled_schema_is_refused_untouched(tmp_path: Path) -> None:
    folder = tmp_path / "f"
    with Faceset.open(folder, create=True):
        pass
    db = folder / "faceset.sqlite"
    conn = sqlite3.connect(db)
    conn.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (SCHEMA_VERSION + 1,))
    conn.commit()
    conn.close()
    before = _digest(db)
    with pytest.raises(CorruptError) as newer:
        Faceset.open(folder)
    assert "newer swapdeck" in newer.value.one_line() and "\n" not in newer.value.one_line()
    assert _digest(db) == before
    # Today's layout claiming version 1 is none of version 1's: refused, not "upgraded".
    conn = sqlite3.connect(db)
    conn.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
    conn.commit()
    conn.close()
    with pytest.raises(CorruptError, match="table faces does not have its columns"):
        Faceset.open(folder)
    assert _state(folder)[0] == "1"

"""A faceset's faces as comparable data, for tests of interrupted and resumed extracts."""

from __future__ import annotations

import hashlib
from pathlib import Path

from engine.faceset import Faceset


def face_snapshot(folder: Path) -> dict[tuple[str, int, int], tuple]:
    """Faces keyed by (source file name, frame, index): landmarks, pose and PNG hash.

    Fails the test on a face stored twice, a row without its file or a file without
    its row.
    """
    with Faceset.open(folder) as fs:
        paths = {s["id"]: Path(str(s["path"])).name for s in fs.sources()}
        out: dict[tuple[str, int, int], tuple] = {}
        rows = 0
        for f in fs.faces():
            rows += 1
            data = (folder / "faces" / f.file).read_bytes()
            out[(paths[f.source_id], f.frame, f.idx)] = (
                f.landmarks.round(3).tobytes(),
                round(f.yaw, 3),
                f.tracked,
                hashlib.sha256(data).hexdigest(),
            )
    assert rows == len(out), "the same face stored twice"
    files = {p.name for p in (folder / "faces").glob("*.png")}
    assert len(files) == len(out), "a row without its file or a file without its row"
    return out

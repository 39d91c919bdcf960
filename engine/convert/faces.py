"""Where convert gets its faces: a faceset made from this same video, or found on the fly.

A reference photo narrows the swap to one person: a face is swapped only when
its identity embedding is close to a reference. The embedding is computed
once per face chain every second or so, not on every frame.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from engine.faces.identity import Embedder, nearest_distance
from engine.faces.tracking import EMBED_EVERY
from engine.faceset import Faceset, source_key
from engine.workspace import Workspace


class ManifestFaces:
    """Landmarks a faceset already holds for every frame of this video."""

    def __init__(self, faceset: Faceset, source_id: int, name: str) -> None:
        self.faceset = faceset
        self.source_id = source_id
        self.name = name

    @classmethod
    def find(cls, workspace: Workspace, path: Path) -> ManifestFaces | None:
        """The faceset that extracted every frame of `path`, if any (it stays open)."""
        key = source_key(path)
        for name in workspace.faceset_names():
            faceset = Faceset.open(workspace.faceset_dir(name))
            for source in faceset.sources():
                whole = int(source["frames_done"]) >= int(source["frames"])  # type: ignore[call-overload]
                if source["path"] == key and source["kind"] == "video" and whole:
                    return cls(faceset, int(source["id"]), name)  # type: ignore[call-overload]
            faceset.close()
        return None

    def landmarks(self, frame: int) -> list[np.ndarray]:
        records = self.faceset.faces("WHERE source_id = ? AND frame = ?", (self.source_id, frame))
        return [r.landmarks.astype(np.float32) for r in records]

    def close(self) -> None:
        self.faceset.close()


class IdentityFilter:
    """Which faces to swap: all of them, or those matching the reference photos."""

    def __init__(self, references: np.ndarray, threshold: float, embedder: Embedder | None):
        self.references = references
        self.threshold = threshold
        self.embedder = embedder
        self._verdicts: dict[int, tuple[bool, int]] = {}  # chain -> (swap it, frames since)

    @property
    def active(self) -> bool:
        return len(self.references) > 0

    def reset(self) -> None:
        """Forget earlier verdicts (chain numbers start over)."""
        self._verdicts.clear()

    def wanted(self, image: np.ndarray, landmarks: np.ndarray, chain: int) -> bool:
        if not self.active or self.embedder is None:
            return True
        verdict = self._verdicts.get(chain)
        if verdict is not None and verdict[1] < EMBED_EVERY:
            self._verdicts[chain] = (verdict[0], verdict[1] + 1)
            return verdict[0]
        embedding = self.embedder.embed(image, landmarks)
        keep = nearest_distance(embedding, self.references) <= self.threshold
        self._verdicts[chain] = (keep, 1)
        return keep

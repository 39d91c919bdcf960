"""Where convert gets its faces: a faceset made from this same video, or found on the fly.

The faceset is the one the model was trained on (its source side) or the one the
user names, never just any faceset of the same video. Its faces come with the
track ids extract gave them, so convert chains (and smooths) the faces extract
followed as one person, instead of linking them again by overlap.

A reference photo narrows the swap to one person: a face is swapped only when
its identity embedding is close to a reference. The embedding is computed
once per face chain every second or so, not on every frame.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from engine.convert.smooth import Face
from engine.errors import BadInputError, SwapdeckError
from engine.faces.identity import Embedder, nearest_distance
from engine.faces.tracking import EMBED_EVERY
from engine.faceset import Faceset, source_key
from engine.media.paths import printable
from engine.workspace import Workspace


class ManifestFaces:
    """Landmarks a faceset already holds for every frame of this video."""

    def __init__(self, faceset: Faceset, source_id: int, name: str) -> None:
        self.faceset = faceset
        self.source_id = source_id
        self.name = name

    @classmethod
    def find(
        cls, workspace: Workspace, path: Path, name: str, required: bool = False
    ) -> ManifestFaces | None:
        """Faceset `name` when it covers video `path` (it stays open), else None.

        Only the faceset asked for is looked at: another one of the same video may hold
        other people (extracted without a reference) and would swap them. With
        `required` (the user named it), not covering is an error that says why.
        """
        if not (workspace.faceset_dir(name) / "faceset.sqlite").is_file():
            if required:
                workspace.existing_faceset_dir(name)  # raises NotFoundError, naming those there
            return None
        faceset = Faceset.open(workspace.faceset_dir(name))
        source_id, why_not = _covering_source(faceset, source_key(path))
        if source_id is not None:
            return cls(faceset, source_id, name)
        faceset.close()
        if required:
            raise BadInputError(
                f"faceset {name} does not cover {printable(path)}: {why_not}",
                f"extract the whole video into it (swapdeck extract {printable(path)} -f {name}), "
                "or leave out --faceset",
            )
        return None

    @staticmethod
    def covering(workspace: Workspace, path: Path) -> list[str]:
        """Every faceset that covers video `path`, for a hint."""
        key = source_key(path)
        names = []
        for name in workspace.faceset_names():
            try:
                with Faceset.open(workspace.faceset_dir(name)) as faceset:
                    if _covering_source(faceset, key)[0] is not None:
                        names.append(name)
            except SwapdeckError:  # a damaged faceset this convert does not use: no hint
                continue
        return names

    def faces(self, frame: int) -> list[Face]:
        """The faces stored for a frame, each with its track (None from an older faceset)."""
        records = self.faceset.faces("WHERE source_id = ? AND frame = ?", (self.source_id, frame))
        return [Face(r.landmarks.astype(np.float32), track=r.track) for r in records]

    def close(self) -> None:
        self.faceset.close()


def _covering_source(faceset: Faceset, key: str) -> tuple[int | None, str]:
    """The id of video source `key` when every frame was extracted and it has faces; else why not.

    A source with no face at all is never taken: an extract whose reference matched no
    one leaves exactly that, every frame done, and converting with it would swap nothing.
    """
    for source in faceset.sources():
        if source["path"] != key or source["kind"] != "video":
            continue
        done, frames = int(source["frames_done"]), int(source["frames"])  # type: ignore[call-overload]
        if done < frames:
            return None, f"only {done} of its {frames} frames were extracted"
        if not source["faces"]:
            return None, "it holds no face of it"
        return int(source["id"]), ""  # type: ignore[call-overload]
    return None, "it was not extracted from this video"


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

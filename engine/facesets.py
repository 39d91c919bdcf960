"""Looking at and tidying facesets: summaries and pruning."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from engine.errors import BadInputError
from engine.faceset import Faceset
from engine.workspace import Workspace


def _spread(values: np.ndarray) -> dict[str, float]:
    if values.size == 0:
        return {}
    q = np.percentile(values, [0, 10, 50, 90, 100])
    return {
        k: round(float(v), 2)
        for k, v in zip(("min", "p10", "median", "p90", "max"), q, strict=True)
    }


def summarize(faceset: Faceset) -> dict[str, Any]:
    sources = faceset.sources()
    faces = list(faceset.faces())
    return {
        "name": faceset.folder.name,
        "path": str(faceset.folder),
        "faces": len(faces),
        "tracked": sum(f.tracked for f in faces),
        "labelled": sum(f.label is not None for f in faces),  # imported label masks
        "size": faceset.size,
        "coverage": float(faceset.meta("coverage") or 0),
        "sources": sources,
        "frames_done": sum(int(s["frames_done"]) for s in sources),  # type: ignore[call-overload]
        "blur": _spread(faceset.column("blur")),
        "yaw": _spread(faceset.column("yaw")),
        "pitch": _spread(faceset.column("pitch")),
        "roll": _spread(faceset.column("roll")),
        "items": [
            {
                "id": f.id,
                "file": f.file,
                "source_id": f.source_id,
                "frame": f.frame,
                "blur": round(f.blur, 2),
                "yaw": round(f.yaw, 1),
                "pitch": round(f.pitch, 1),
                "roll": round(f.roll, 1),
                "tracked": f.tracked,
                "labelled": f.label is not None,
            }
            for f in faces
        ],
    }


def list_facesets(workspace: Workspace) -> list[dict[str, Any]]:
    """One summary per faceset in the workspace (sources left out)."""
    out = []
    for name in workspace.faceset_names():
        with Faceset.open(workspace.faceset_dir(name)) as faceset:
            summary = summarize(faceset)
        summary["sources"] = len(summary["sources"])
        del summary["items"]
        out.append(summary)
    return out


def describe_faceset(workspace: Workspace, name: str) -> dict[str, Any]:
    with Faceset.open(workspace.existing_faceset_dir(name)) as faceset:
        return summarize(faceset)


def prune_faceset(
    workspace: Workspace, name: str, blur_below: float | None = None, ids: Iterable[int] = ()
) -> dict[str, Any]:
    """Remove faces (rows and files together) by sharpness threshold and/or by id."""
    ids = set(ids)
    if blur_below is None and not ids:
        raise BadInputError("nothing to prune", "give --blur-below X and/or --id N")
    with Faceset.open(workspace.existing_faceset_dir(name)) as faceset:
        chosen = set()
        known = set()
        for face in faceset.faces():
            known.add(face.id)
            if face.id in ids or (blur_below is not None and face.blur < blur_below):
                chosen.add(int(face.id or 0))
        unknown = sorted(ids - known)
        if unknown:
            raise BadInputError(
                f"faceset {name} has no face with id {unknown[0]}",
                f"see the ids with 'swapdeck faceset show {name} --json'",
            )
        removed = faceset.delete_faces(sorted(chosen))
        left = faceset.count()
    return {"faceset": name, "removed": len(removed), "faces": left, "files": removed}

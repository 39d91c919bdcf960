"""The main job on the bundled sample data: the whole pipeline, start to end.

For now: extract identity a and identity b from sample_data/ into facesets
`a` and `b`. Reruns resume, so a second run only reports.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from engine.config import ExtractConfig, build
from engine.errors import NotFoundError
from engine.events import CancelToken, Finished, Sink, null_sink
from engine.extract import extract
from engine.workspace import Workspace


def default_sample_data() -> Path:
    return Path(__file__).resolve().parent.parent / "sample_data"


def run_demo(
    workspace: Workspace,
    sample_data: Path | None = None,
    sink: Sink = null_sink,
    cancel: CancelToken | None = None,
) -> dict[str, Any]:
    """Extract both sample identities; returns one result per faceset."""
    sample_data = sample_data or default_sample_data()
    results: dict[str, Any] = {"workspace": str(workspace.root)}
    for name in ("a", "b"):
        folder = sample_data / name
        if not folder.is_dir():
            raise NotFoundError(
                f"sample data folder {folder} is missing",
                "run from a swapdeck checkout, or pass --sample-data",
            )
        config = build(ExtractConfig, sources=[folder], faceset=name, backend="dlib")
        results[name] = extract(config, workspace, sink, cancel)
    sink(Finished(stage="demo", result=results))
    return results

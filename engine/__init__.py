"""swapdeck's headless engine: extract, train, convert, score, jobs.

Front ends (the typer CLI, the Textual wizard) call these functions and listen
to their events; the engine never prints, prompts, exits or imports textual.
Names are imported on first use so `import engine` stays cheap.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

_API = {
    "extract": "engine.extract",
    "ExtractConfig": "engine.config",
    "Workspace": "engine.workspace",
    "SwapdeckError": "engine.errors",
    "CancelToken": "engine.events",
    "list_facesets": "engine.facesets",
    "describe_faceset": "engine.facesets",
    "prune_faceset": "engine.facesets",
    "import_labels": "engine.labels",
    "clear_labels": "engine.labels",
    "mask_sheet": "engine.mask_sheet",
    "run_doctor": "engine.doctor",
    "train": "engine.train.loop",
    "convert": "engine.convert",
    "ConvertConfig": "engine.config",
    "score": "engine.score",
    "verify": "engine.provenance",
    "run_demo": "engine.demo",
    "start_train": "engine.jobs",
    "start_job": "engine.jobs",
    "register_kind": "engine.jobs",
    "register_family": "engine.train.registry",
    "list_jobs": "engine.jobs",
    "get_job": "engine.jobs",
    "active_job": "engine.jobs",
    "follow": "engine.jobs",
    "stop_job": "engine.jobs",
    "save_now": "engine.jobs",
    "gpu_stats": "engine.gpu",
}

__all__ = sorted(_API)


# Names the API gives a clearer name than their module does.
_RENAMED = {"register_family": "register"}


def __getattr__(name: str) -> Any:
    if name in _API:
        return getattr(import_module(_API[name]), _RENAMED.get(name, name))
    raise AttributeError(f"module 'engine' has no attribute {name!r}")

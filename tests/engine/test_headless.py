"""The engine stays headless: importing all of it never pulls in textual or the TUI."""

from __future__ import annotations

import subprocess
import sys

MODULES = [
    "engine",
    "engine.extract",
    "engine.facesets",
    "engine.demo",
    "engine.doctor",
    "engine.faces.backends.fan",
    "engine.cli",
    "engine.jobs",
    "engine.model_index",
    "engine.gpu",
    "engine.train.loop",
    "engine.convert",
]


def test_engine_never_imports_textual():
    code = (
        "import sys\n"
        + "".join(f"import {m}\n" for m in MODULES)
        + "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('textual', 'tui'))\n"
        + "print(','.join(bad))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert out.stdout.strip() == "", f"engine imported: {out.stdout.strip()}"
    # And the check itself can see a module: importing textual is detected when it happens.
    probe = subprocess.run(
        [sys.executable, "-c", "import sys, json; print('json' in sys.modules)"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert probe.stdout.strip() == "True"


def test_no_engine_source_imports_the_front_end():
    """Also the lazy imports a run-time check cannot see: none in any engine module."""
    import re
    from pathlib import Path

    engine = Path(__file__).resolve().parents[2] / "engine"
    pattern = re.compile(r"^\s*(from|import)\s+(textual|tui)\b", re.MULTILINE)
    offenders = [str(p) for p in engine.rglob("*.py") if pattern.search(p.read_text())]
    assert offenders == []
    assert pattern.search("    from tui.app import run")  # the pattern does catch one

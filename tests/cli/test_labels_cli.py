"""`swapdeck faceset labels`: label PNGs imported and counted by `faceset show`; refusals."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from cliutil import assert_fails, plain, swapdeck
from PIL import Image


def test_labels_imports_and_show_counts_them(facesets_ws: Path) -> None:
    faces = sorted(p.name for p in (facesets_ws / "facesets" / "a" / "faces").glob("*.png"))
    folder = facesets_ws / "drawn"
    folder.mkdir()
    mask = np.zeros((256, 256), np.uint8)
    mask[:128] = 255
    for name in (*faces[:2], "nobody.png"):
        Image.fromarray(mask).save(folder / name)

    run = swapdeck("faceset", "labels", "a", folder, "-w", facesets_ws, "--json")
    assert run.exit_code == 0, run.output
    events = [json.loads(line) for line in run.stdout.splitlines()]
    assert events[-1]["type"] == "finished" and events[-1]["stage"] == "labels"
    result = events[-1]["result"]
    assert (result["matched"], result["unmatched"]) == (2, ["nobody.png"])
    assert result["unlabelled"] == len(faces) - 2

    shown = swapdeck("faceset", "show", "a", "-w", facesets_ws)
    assert shown.exit_code == 0 and "2 with a label mask" in plain(shown.stdout)
    cleared = swapdeck("faceset", "labels", "a", "-w", facesets_ws, "--clear")
    assert cleared.exit_code == 0, cleared.output
    assert plain(cleared.stdout).strip() == (
        f"faceset a: 2 cleared; 0 faces have a label, {len(faces)} have none"
    )

    refused = swapdeck("faceset", "labels", "a", facesets_ws / "nowhere", "-w", facesets_ws)
    assert_fails(refused, 3, "nowhere does not exist")

"""`swapdeck faceset masks`: the sheet written where asked, said in one line; refusals."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
from cliutil import plain, swapdeck
from maskutil import make_occlusion_model

from engine.workspace import Workspace


def test_masks_writes_the_sheet_and_says_what_drew_it(facesets_ws: Path) -> None:
    make_occlusion_model(Workspace(facesets_ws), "occ", facesets=("a",))
    out = facesets_ws / "check" / "a.png"
    run = swapdeck("faceset", "masks", "a", "-w", facesets_ws, "-o", out, "--count", "3")
    assert run.exit_code == 0, run.output
    assert plain(run.stdout).startswith(f"{out}: 3 faces of a; occlusion model occ; ")
    assert cv2.imread(str(out)) is not None

    run = swapdeck("faceset", "masks", "b", "-w", facesets_ws, "--count", "2", "--json")
    assert run.exit_code == 0, run.output
    finished = [json.loads(line) for line in run.stdout.splitlines()][-1]
    assert finished["type"] == "finished" and finished["stage"] == "masks"
    result = finished["result"]
    assert (result["mask"], result["mask_model"], len(result["faces"])) == ("hull", None, 2)
    assert result["output"] == str(facesets_ws / "facesets" / "b" / "masks.png")


def test_masks_of_an_unknown_faceset_is_one_line(facesets_ws: Path) -> None:
    run = swapdeck("faceset", "masks", "zz", "-w", facesets_ws)
    assert run.exit_code == 3
    text = plain(run.output)
    assert "no faceset 'zz'" in text and "Traceback" not in text
    assert len(text.strip().splitlines()) <= 2  # the message and its hint

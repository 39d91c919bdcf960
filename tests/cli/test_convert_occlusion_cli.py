"""`swapdeck convert --mask occlusion / --mask-model`: the summary names the occlusion model;
each refusal is one line with its exit code, before any face is looked for."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from cliutil import SAMPLE, assert_fails, plain, swapdeck
from convertmasks import colour_key_net, save_occlusion_model

from engine.errors import ExitCode
from engine.workspace import Workspace


@pytest.fixture(scope="module")
def ws(sample_workspace: Workspace, tiny_model: str, tmp_path_factory) -> Path:
    """Model `tiny` (A = faceset a) and occlusion model `keyed` of faceset b."""
    ws = Workspace(tmp_path_factory.mktemp("occ_cli") / "ws")
    shutil.copytree(sample_workspace.model_dir(tiny_model), ws.model_dir(tiny_model))
    # Keyed to magenta: every pixel of a photo is face, so the swap happens as with the hull.
    save_occlusion_model(ws, "keyed", ("b",), colour_key_net((255, 0, 255)))
    return ws.root


def convert(ws: Path, out: Path, *args: str):
    photo = sorted((SAMPLE / "a").glob("*.jpg"))[0]
    return swapdeck("convert", photo, "-w", ws, "-m", "tiny", "-o", out, "--backend", "dlib", *args)


def test_the_summary_names_the_occlusion_model(ws: Path, tmp_path: Path) -> None:
    result = convert(ws, tmp_path / "o.png", "--mask", "occlusion", "--mask-model", "keyed")
    assert result.exit_code == 0, result.output
    summary = " ".join(plain(result.stdout).split())  # Rich wraps it at the terminal's width
    assert "1 faces swapped" in summary
    assert summary.endswith("mask occlusion (occlusion model keyed)")


def test_refusals_are_one_line(ws: Path, tmp_path: Path) -> None:
    out = tmp_path / "o.png"
    line = assert_fails(
        convert(ws, out, "--mask", "occlusion"),
        ExitCode.NOT_FOUND,
        "no occlusion model covers faceset a",
    )
    assert "swapdeck train --family occlusion" in line and "--inputs a" in line
    assert_fails(
        convert(ws, out, "--mask", "occlusion", "--mask-model", "tiny"),
        ExitCode.BAD_INPUT,
        "model tiny is a autoencoder model, not an occlusion mask",
    )
    assert_fails(
        convert(ws, out, "--mask", "hull", "--mask-model", "keyed"),
        ExitCode.BAD_INPUT,
        "--mask hull uses none",
    )
    assert_fails(
        convert(ws, out, "--mask-model", "nope"), ExitCode.NOT_FOUND, "no occlusion model 'nope'"
    )
    assert not out.exists()


def test_help_names_the_masks() -> None:
    text = plain(swapdeck("convert", "--help").stdout)
    assert "occlusion" in text and "--mask-model" in text

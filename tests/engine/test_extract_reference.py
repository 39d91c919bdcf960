"""`--reference` keeps only the faces of the person in the reference photo."""

from __future__ import annotations

import shutil

import pytest

from engine.config import ExtractConfig, build
from engine.errors import BadInputError
from engine.extract import extract
from engine.faceset import Faceset
from engine.workspace import Workspace


def test_reference_keeps_only_that_person(tmp_path, sample_data):
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    a_files = sorted((sample_data / "a").glob("*.jpg"))
    b_files = sorted((sample_data / "b").glob("*.jpg"))
    for p in a_files[1:6] + b_files[1:6]:
        shutil.copy(p, mixed / p.name)
    ws = Workspace(tmp_path / "ws")
    config = build(
        ExtractConfig, sources=[mixed], faceset="only_b", backend="dlib", references=[b_files[0]]
    )
    result = extract(config, ws)
    assert result.faces == 5
    assert result.skipped >= 5
    with Faceset.open(ws.faceset_dir("only_b")) as fs:
        kept = {s["path"].split("/")[-1] for s in fs.sources() if s["faces"]}
    assert kept == {p.name for p in b_files[1:6]}


def test_reference_without_a_face_is_refused(tmp_path, sample_data):
    blank = tmp_path / "blank.png"
    from PIL import Image

    Image.new("RGB", (200, 200), (90, 120, 150)).save(blank)
    config = build(
        ExtractConfig,
        sources=[sample_data / "a" / "a_000.jpg"],
        faceset="x",
        backend="dlib",
        references=[blank],
    )
    with pytest.raises(BadInputError, match="no face found in reference"):
        extract(config, Workspace(tmp_path / "ws"))

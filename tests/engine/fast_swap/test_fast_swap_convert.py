"""A fast-swap model converts, scores and joins compare as the autoencoder does.

One compare trains `tiny` and a fast-swap-small model (a few steps, on the sample
facesets: B is `b`, A fills its optional faceset_a) beside each other, converts a
clip of two people with each, scores both and writes the report. The fast-swap
model's output then has both faces changed and nothing else, and is marked; it
refuses b-to-a (it draws only B) and a learned mask (it learns none); its score has
no reconstruction. The shared fast-swap model, trained with no faceset of A, converts
with faces found on the fly and scores against the target alone. VGG-19 is a randomly initialised
file under torchvision's name in a temporary torch hub cache.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from clips import SAMPLE_CLIP, marked_copy, read_frames, write_clip
from cliutil import assert_fails, swapdeck

from engine.compare.run import compare
from engine.config import CompareConfig, ConvertConfig, build
from engine.convert import convert
from engine.errors import BadInputError, ExitCode
from engine.faces.finder import FaceFinder
from engine.media.images import read_image
from engine.results import CompareModelResult, CompareResult
from engine.score import score
from engine.train.store import ModelPaths, load_settings
from engine.workspace import Workspace

FRAMES = 6
FAST = "fast-swap-small:light_steps=8:batch_size=4"
MODELS = ["tiny", FAST]


@pytest.fixture(scope="module")
def two_people(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample clip (A) with a still of B beside it: two faces in every frame."""
    still = read_image(sorted((SAMPLE_CLIP.parent / "b").glob("*.jpg"))[0])
    frames = []
    for frame in read_frames(SAMPLE_CLIP, FRAMES):
        right = np.zeros_like(frame)
        h, w = min(frame.shape[0], still.shape[0]), min(frame.shape[1], still.shape[1])
        right[:h, :w] = still[:h, :w]
        frames.append(np.concatenate([frame, right], axis=1))
    return write_clip(tmp_path_factory.mktemp("clip") / "two.mp4", frames)


@pytest.fixture(scope="module")
def compared(
    sample_workspace: Workspace,
    torch_home: Path,
    two_people: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Workspace, CompareResult, list[Any]]:
    ws = Workspace(tmp_path_factory.mktemp("fastswap_convert_ws"))
    shutil.copytree(sample_workspace.facesets_dir, ws.root / "facesets")
    config = build(
        CompareConfig,
        faceset_a="a",
        faceset_b="b",
        models=MODELS,
        clip=two_people,
        budget="16",  # tiny: one step of 16 + 16; fast-swap: four of 4
        report=ws.compares_dir / "fs",
        backend="dlib",
        device="cpu",
        sheet_frames=2,
    )
    events: list[Any] = []
    return ws, compare(config, ws, events.append), events


def fast(result: CompareResult) -> CompareModelResult:
    return next(m for m in result.models if m.spec == FAST)


def face_boxes(frame: np.ndarray) -> list[tuple[int, int, int, int]]:
    """Each face's landmark box, left to right."""
    boxes = []
    for face in FaceFinder("dlib").find(frame, video=False):
        x0, y0 = face.landmarks.min(axis=0).astype(int)
        x1, y1 = face.landmarks.max(axis=0).astype(int)
        boxes.append((x0, y0, x1, y1))
    return sorted(boxes)


def test_fast_swap_trains_converts_and_scores_beside_tiny(compared) -> None:
    ws, result, _ = compared
    assert [m.spec for m in result.models] == MODELS
    model = fast(result)
    assert model.structure.family == "fast-swap"
    assert (model.steps, model.examples) == (4, 16)
    assert model.losses.keys() == {"content", "style", "light", "tv"}
    assert model.convert is not None and model.score is not None
    # Compare's A fills the optional faceset_a: the score knows whom the faces replaced.
    assert load_settings(ModelPaths(ws.model_dir(model.model)).toml).faceset_a == "a"
    assert (model.score.source, model.score.target) == ("a", "b")
    assert model.score.average.identity.retrieval is not None
    # A network that draws only B rebuilds no one's own faces.
    rec = model.score.reconstruction
    assert (rec.ssim_a, rec.faces_a, rec.ssim_b, rec.faces_b) == (None, 0, None, 0)
    assert result.models[0].score is not None
    assert result.models[0].score.reconstruction.ssim_a is not None
    text = Path(result.report).read_text()
    assert f"| {FAST} | fast-swap | fast-swap-small |" in text
    assert result.sheet is not None and Path(result.sheet).is_file()


def test_both_faces_change_nothing_else_does_and_the_output_is_marked(
    compared, two_people: Path, tmp_path: Path
) -> None:
    from engine.provenance import verify

    _, result, _ = compared
    model = fast(result)
    assert model.convert is not None and model.output is not None
    assert model.convert.frames == FRAMES
    assert model.convert.faces_swapped == 2 * FRAMES
    output = Path(model.output)
    assert verify(output).marked
    baseline = np.stack(read_frames(marked_copy(two_people, tmp_path / "b.mp4"))).astype(np.int16)
    after = np.stack(read_frames(output)).astype(np.int16)
    boxes = face_boxes(read_frames(two_people, 1)[0])
    assert len(boxes) == 2
    changed = np.abs(baseline - after).mean(axis=-1)
    outside = np.ones(changed.shape[1:], bool)
    for x0, y0, x1, y1 in boxes:
        assert changed[:, y0:y1, x0:x1].mean() > 8  # each face is redrawn
        outside[max(0, y0 - 60) : y1 + 60, max(0, x0 - 60) : x1 + 60] = False
    assert changed[:, outside].mean() < 1.5  # elsewhere: codec noise only


def test_b_to_a_and_a_learned_mask_are_refused_in_one_line(
    compared, two_people: Path, tmp_path: Path
) -> None:
    ws, result, _ = compared
    name = fast(result).model
    out = tmp_path / "o.mp4"
    for options, words in (
        ({"direction": "b-to-a"}, "only into B (b), not b-to-a"),
        ({"mask": "learned"}, "does not learn masks"),
    ):
        config = build(ConvertConfig, input=two_people, output=out, model=name, **options)
        with pytest.raises(BadInputError) as caught:
            convert(config, ws)
        assert words in caught.value.one_line() and "\n" not in caught.value.one_line()
    assert not out.exists()
    flags = ("-w", ws.root, "-m", name, "-o", out, "--direction", "b-to-a")
    assert_fails(swapdeck("convert", two_people, *flags), ExitCode.BAD_INPUT, "not b-to-a")
    with pytest.raises(BadInputError, match="not b-to-a"):
        score(ws, name, [(two_people, Path(fast(result).output or ""))], direction="b-to-a")


def test_without_a_faceset_of_a_it_converts_and_scores_against_b_alone(
    fast_swap_model, two_people: Path, tmp_path: Path
) -> None:
    ws, name, _ = fast_swap_model  # trained with no -a: B, and anyone else's faces
    assert load_settings(ModelPaths(ws.model_dir(name)).toml).faceset_a is None
    out = tmp_path / "no_a.mp4"
    events: list[Any] = []
    config = build(ConvertConfig, input=two_people, output=out, model=name, backend="dlib")
    done = convert(config, ws, events.append)
    assert done.faces_swapped == 2 * FRAMES
    started = next(e for e in events if e.type == "started")
    assert (started.detail["mask"], started.detail["faces_from"]) == ("hull", "found on the fly")

    events.clear()
    scored = score(ws, name, [(two_people, out)], backend="dlib", sink=events.append)
    assert (scored.source, scored.target) == (None, "b")
    identity = scored.average.identity
    assert identity.dist_target is not None and identity.dist_target > 0
    assert (identity.dist_source, identity.retrieval) == (None, None)
    assert scored.reconstruction.ssim_a is None and scored.reconstruction.ssim_b is None
    assert scored.videos[0].faces == 2 * FRAMES
    warnings = [e.message for e in events if e.type == "warning"]
    assert any("names no faceset of the person replaced" in w for w in warnings)

"""score: identical footage scores as untouched; a pasted face of B scores as a swap to B."""

from __future__ import annotations

import json
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from engine.errors import BadInputError, CancelledError
from engine.events import CancelToken, Finished, Progress, Started, Warning
from engine.faces.align import alignment_matrix
from engine.faces.backends.dlib_backend import DlibBackend
from engine.faceset import Faceset
from engine.score import pairs_from_paths, score
from engine.workspace import Workspace

SAMPLE = Path(__file__).resolve().parents[2] / "sample_data"
FRAMES = 20


def write_clip(path: Path, frames: list[np.ndarray]) -> Path:
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=25)
        stream.height, stream.width = frames[0].shape[:2]
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": "18", "preset": "ultrafast"}
        for frame in frames:
            out.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        out.mux(stream.encode())
    return path


def sample_frames(count: int) -> list[np.ndarray]:
    with av.open(str(SAMPLE / "clip_a.mp4")) as container:
        frames = []
        for frame in container.decode(video=0):
            frames.append(frame.to_ndarray(format="rgb24"))
            if len(frames) == count:
                return frames
    raise AssertionError("sample clip too short")


def mouth_open(landmarks: np.ndarray) -> float:
    return float(np.linalg.norm(landmarks[66] - landmarks[62]))


def paste_face(frames: list[np.ndarray], workspace: Workspace) -> list[np.ndarray]:
    """A crude swap that flickers: two faces of faceset b, its first and the one with the
    widest-open mouth, in turn, warped onto each face with their hull masks.

    (Alternating, because the sample clip is real talking: one still face pasted over it
    moves less from frame to frame than her own mouth does, so it would not add jitter.)
    """
    pasted = []
    with Faceset.open(workspace.faceset_dir("b")) as faceset:
        records = list(faceset.faces())
        for record in (records[0], max(records, key=lambda r: mouth_open(r.landmarks))):
            path = str(faceset.faces_dir / record.file)
            crop = cv2.cvtColor(cv2.imread(path), cv2.COLOR_BGR2RGB)
            mask_png = np.frombuffer(record.mask or b"", np.uint8)
            pasted.append((crop, cv2.imdecode(mask_png, cv2.IMREAD_GRAYSCALE)))
    backend = DlibBackend()
    out = []
    for i, image in enumerate(frames):
        crop, mask = pasted[i % 2]
        h, w = image.shape[:2]
        for landmarks in backend.landmarks(image, [d.box for d in backend.detect(image)]):
            matrix = alignment_matrix(landmarks, crop.shape[0], 0.75)
            flags = cv2.WARP_INVERSE_MAP | cv2.INTER_LINEAR
            face = cv2.warpAffine(crop, matrix, (w, h), flags=flags)
            alpha = cv2.warpAffine(mask, matrix, (w, h), flags=flags)[..., None] / 255.0
            image = (image * (1 - alpha) + face * alpha).astype(np.uint8)
        out.append(image)
    return out


@pytest.fixture(scope="module")
def clips(tmp_path_factory, sample_workspace) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("score_clips")
    frames = sample_frames(FRAMES)
    return {
        "clip": write_clip(root / "clip.mp4", frames),
        "pasted": write_clip(root / "pasted.mp4", paste_face(frames, sample_workspace)),
        "short": write_clip(root / "short.mp4", frames[: FRAMES - 5]),
    }


@pytest.fixture(scope="module")
def scored(sample_workspace, tiny_model, clips) -> tuple[dict, list]:
    """One run over two pairs: (clip, clip) and (clip, pasted)."""
    events: list = []
    pairs = [(clips["clip"], clips["clip"]), (clips["clip"], clips["pasted"])]
    result = score(sample_workspace, tiny_model, pairs, backend="dlib", sink=events.append)
    return result.model_dump(mode="json"), events  # as --json and the Finished event carry it


def numbers(tree: object) -> list[object]:
    if isinstance(tree, dict):
        return [x for v in tree.values() for x in numbers(v)]
    return [tree]


def test_every_figure_is_a_plain_number(scored):
    result, _ = scored
    json.dumps(result, allow_nan=False)  # no NaN or infinity anywhere
    assert result["model"] == "tiny" and result["direction"] == "a-to-b"
    assert (result["source"], result["target"]) == ("a", "b")
    assert len(result["videos"]) == 2
    for part in (*result["videos"], result["average"]):
        groups = {k: part[k] for k in ("identity", "expression", "stability")}
        assert set(groups["identity"]) == {"retrieval", "dist_target", "dist_source"}
        assert set(groups["expression"]) == {"nme", "yaw", "pitch", "roll"}
        assert {"original", "swapped", "ratio"} <= set(groups["stability"])
        assert all(isinstance(x, float) for x in numbers(groups)), groups
    recon = result["reconstruction"]
    assert 0.0 < recon["ssim_a"] <= 1.0 and 0.0 < recon["ssim_b"] <= 1.0


def test_identical_footage_keeps_everything(scored):
    same = scored[0]["videos"][0]
    assert same["frames"] == FRAMES and same["faces"] == FRAMES and same["skipped"] == 0
    assert same["expression"] == {"nme": 0.0, "yaw": 0.0, "pitch": 0.0, "roll": 0.0}
    assert same["stability"]["ratio"] == pytest.approx(1.0)
    assert same["stability"]["original"] > 0  # the head moves and talks
    # The footage is person a: nothing was swapped, so no face is closer to b.
    identity = same["identity"]
    assert identity["retrieval"] == 0.0
    assert identity["dist_source"] < 0.6 < identity["dist_target"]


def test_pasted_face_of_b_scores_as_a_swap_to_b(scored):
    same, pasted = scored[0]["videos"]
    assert pasted["faces"] == FRAMES
    assert pasted["identity"]["retrieval"] >= 0.9
    assert pasted["identity"]["dist_target"] < pasted["identity"]["dist_source"]
    assert pasted["identity"]["dist_target"] < same["identity"]["dist_target"] - 0.2
    # Still faces pasted over a talking one: expression and pose are not kept...
    assert pasted["expression"]["nme"] > 0.02
    assert pasted["expression"]["pitch"] > 1.0
    # ...and swapping faces from frame to frame adds jitter.
    assert pasted["stability"]["swapped"] > pasted["stability"]["original"]
    assert pasted["stability"]["ratio"] > 1.1


def test_average_is_the_mean_over_pairs(scored):
    result, _ = scored
    same, pasted = result["videos"]
    for group, key in (("identity", "retrieval"), ("expression", "nme"), ("stability", "ratio")):
        expected = (same[group][key] + pasted[group][key]) / 2
        assert result["average"][group][key] == pytest.approx(expected, abs=1e-5)


def test_events_start_progress_finish(scored):
    result, events = scored
    assert isinstance(events[0], Started) and events[0].detail["backend"] == "dlib"
    progress = [e for e in events if isinstance(e, Progress)]
    assert progress and progress[-1].done == progress[-1].total == 2 * FRAMES
    assert isinstance(events[-1], Finished) and events[-1].stage == "score"
    assert events[-1].result == result


def test_frame_count_mismatch_is_bad_input(sample_workspace, tiny_model, clips):
    with pytest.raises(BadInputError, match=r"has 20 frames but .* has 15") as info:
        score(sample_workspace, tiny_model, [(clips["clip"], clips["short"])], backend="dlib")
    assert "same frames" in info.value.hint


def image_folder(path: Path, frames: list[np.ndarray]) -> Path:
    path.mkdir()
    for i, frame in enumerate(frames):
        cv2.imwrite(str(path / f"{i:03d}.png"), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    return path


def test_frame_size_mismatch_is_bad_input(sample_workspace, tiny_model, tmp_path):
    big = image_folder(tmp_path / "big", [np.zeros((64, 64, 3), np.uint8)] * 2)
    small = image_folder(tmp_path / "small", [np.zeros((48, 64, 3), np.uint8)] * 2)
    with pytest.raises(BadInputError, match=r"is 64x48 but .* is 64x64"):
        score(sample_workspace, tiny_model, [(big, small)], backend="dlib")


def test_no_faces_gives_nulls_and_a_warning(sample_workspace, tiny_model, tmp_path):
    blank = image_folder(tmp_path / "blank", [np.full((64, 64, 3), 90, np.uint8)] * 2)
    events: list = []
    result = score(
        sample_workspace, tiny_model, [(blank, blank)], backend="dlib", sink=events.append
    ).model_dump(mode="json")
    video = result["videos"][0]
    assert video["frames"] == 2 and video["faces"] == 0
    assert all(x is None for x in numbers({k: video[k] for k in ("identity", "expression")}))
    assert all(x is None for x in numbers(result["average"]))
    json.dumps(result, allow_nan=False)
    assert any(isinstance(e, Warning) and "no faces" in e.message for e in events)


def test_image_folder_b_to_a(sample_workspace, tiny_model, tmp_path):
    """Frames as images: faces are measured (no tracks, so no jitter); b-to-a targets a."""
    folder = image_folder(tmp_path / "frames", sample_frames(3))
    result = score(sample_workspace, tiny_model, [(folder, folder)], "b-to-a", "dlib")
    video = result.videos[0]
    assert (result.source, result.target) == ("b", "a")
    assert video.faces == 3 and video.expression.nme == 0.0
    assert video.identity.retrieval == 1.0  # person a, now the target
    assert video.stability.ratio is None


def test_cancel_stops_with_cancelled_error(sample_workspace, tiny_model, clips):
    token = CancelToken()
    token.cancel()
    with pytest.raises(CancelledError):
        score(
            sample_workspace,
            tiny_model,
            [(clips["clip"], clips["clip"])],
            "a-to-b",
            "dlib",
            cancel=token,
        )


def test_pairs_from_paths():
    assert pairs_from_paths([Path("a"), Path("b"), Path("c"), Path("d")]) == [
        (Path("a"), Path("b")),
        (Path("c"), Path("d")),
    ]
    for odd in ([Path("a")], [Path("a"), Path("b"), Path("c")], []):
        with pytest.raises(BadInputError, match="pairs"):
            pairs_from_paths(odd)


def test_unknown_direction_is_bad_input(sample_workspace, tiny_model, clips):
    with pytest.raises(BadInputError, match="direction"):
        score(sample_workspace, tiny_model, [(clips["clip"], clips["clip"])], "sideways")

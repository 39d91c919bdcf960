"""`swapdeck import fomm`: the authors' checkpoint layout imports (both torch formats) and
reenacts real footage; a hostile or misfit file is refused in one line, nothing run,
nothing left behind, the file untouched."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from cliutil import assert_fails, plain, swapdeck
from fomm_authors import (
    SMALL,
    authors_checkpoint,
    generator_shapes,
    hostile_checkpoint,
    kp_detector_shapes,
    payloads,
    save,
)
from footage import fit, footage, read_frames
from safetensors import safe_open

from engine.errors import BadInputError, CorruptError, ExitCode, NotFoundError
from engine.train.checkpoint import load_checkpoint, read_info
from engine.train.families.fomm.importer import import_fomm
from engine.train.families.fomm.inference import load_reenactor
from engine.train.families.fomm.motion import relative_motion
from engine.train.families.fomm.networks import build_networks
from engine.train.registry import implementation
from engine.train.store import ModelPaths, create_model, load_settings, new_settings
from engine.workspace import Workspace


def stamp(path: Path) -> tuple[int, int, int]:
    """Size, modification time and inode: any write (or replacement) changes one."""
    st = path.stat()
    return st.st_size, st.st_mtime_ns, st.st_ino


def tensors(path: Path) -> dict[str, torch.Tensor]:
    with safe_open(str(path), framework="pt") as f:
        return {k: f.get_tensor(k) for k in f.keys() if k.startswith("model.")}  # noqa: SIM118


@pytest.fixture(scope="module")
def ws(tmp_path_factory) -> Workspace:
    return Workspace(tmp_path_factory.mktemp("import") / "ws")


@pytest.fixture(scope="module")
def imported(vox_files, ws):
    """Both files imported: zip through the engine (events kept), legacy through the CLI."""
    before = {kind: stamp(path) for kind, path in vox_files.items()}
    events: list = []
    result = import_fomm(vox_files["zip"], ws, "vox", events.append)
    cli = swapdeck("import", "fomm", vox_files["legacy"], "-w", ws.root, "-m", "vox-legacy")
    assert cli.exit_code == 0, cli.output
    after = {kind: stamp(path) for kind, path in vox_files.items()}
    return result, events, plain(cli.stdout), before, after


def test_both_formats_import(imported, ws, vox_files):
    result, events, stdout, before, after = imported
    assert before == after  # the checkpoints are only read
    assert result.model == "vox" and result.preset == "vox-256" and result.family == "fomm"
    assert result.epoch == 3
    assert result.skipped == ["discriminator", "optimizer_generator"]
    assert result.tensors == len(kp_detector_shapes()) + len(generator_shapes())
    assert [e.type for e in events] == ["started", "finished"]
    assert "model vox-legacy: fomm vox-256" in stdout and "epoch 3" in stdout
    for name in ("vox", "vox-legacy"):
        folder = ws.model_dir(name)
        settings = load_settings(folder / "model.toml")
        assert (settings.family, settings.preset, settings.size) == ("fomm", "vox-256", 256)
        info = read_info(folder / "checkpoint.safetensors")
        assert info["step"] == 0 and info["epoch"] == 3
    # Both hold exactly the file's weights, under the model's names.
    original = torch.load(vox_files["zip"], map_location="cpu", weights_only=True, mmap=True)
    zipped = tensors(ws.model_dir("vox") / "checkpoint.safetensors")
    legacy = tensors(ws.model_dir("vox-legacy") / "checkpoint.safetensors")
    assert zipped.keys() == legacy.keys()
    for key, value in zipped.items():
        part, _, inner = key.removeprefix("model.").partition(".")
        assert torch.equal(value, original[part][inner]), key
        assert torch.equal(value, legacy[key]), key
    assert not [p.name for p in ws.models_dir.iterdir() if p.is_dir() and p.name[0] == "."]


def test_json_events_and_a_checkpoint_training_resumes_from(tmp_path):
    path = save(authors_checkpoint(SMALL), tmp_path / "small.pth.tar")
    ws = tmp_path / "ws"
    out = swapdeck("import", "fomm", path, "-w", ws, "-m", "s", "--preset", "fomm-small", "--json")
    assert out.exit_code == 0, out.output
    lines = [json.loads(line) for line in out.stdout.splitlines()]
    assert lines[-1]["type"] == "finished"
    assert lines[-1]["result"]["model"] == "s" and lines[-1]["result"]["preset"] == "fomm-small"
    # Training can go on from it: the family's own optimizers load from the checkpoint.
    settings = load_settings(Workspace(ws).model_dir("s") / "model.toml")
    networks = build_networks(settings)
    optimizers = implementation("fomm")(settings, Workspace(ws)).optimizers(networks)
    info, _ = load_checkpoint(
        Workspace(ws).model_dir("s") / "checkpoint.safetensors", networks, optimizers
    )
    assert info["step"] == 0


def test_imported_model_reenacts_real_footage(imported, ws):
    portrait = fit(np.asarray(_rgb(footage("portrait_s0.jpg"))), 256, 256)
    frames = np.stack([fit(f, 256, 256) for f in read_frames("talk_d0.mp4", 0, 12)[::11]])
    reenactor = load_reenactor(ws, "vox", device="cpu")
    assert (reenactor.size, reenactor.step, reenactor.device.type) == (256, 0, "cpu")
    kp_source = reenactor.keypoints(portrait[None])
    kp_driving = reenactor.keypoints(frames)
    assert kp_driving["value"].shape == (2, 10, 2)
    assert kp_driving["jacobian"].shape == (2, 10, 2, 2)
    kp_initial = {k: v[:1] for k, v in kp_driving.items()}
    motion = relative_motion(kp_source, kp_driving, kp_initial)
    # The reference frame itself: the source's own keypoints.
    assert torch.allclose(motion["value"][0], kp_source["value"][0], atol=1e-6)
    out = reenactor.animate(portrait, kp_source, motion)
    assert out.shape == (2, 256, 256, 3) and out.dtype == np.uint8
    assert out.std() > 1  # a picture, not a flat colour
    assert np.abs(out[0].astype(int) - out[1]).mean() > 0  # the driving motion matters


def _rgb(path: Path) -> np.ndarray:
    import cv2

    return cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)


# ---- refusals ---------------------------------------------------------------------------


def _small_file(tmp_path: Path, edit=None, legacy: bool = False) -> Path:
    data = authors_checkpoint(SMALL)
    if edit:
        data = edit(data) or data
    return save(data, tmp_path / "small.pth.tar", legacy)


def _refused(tmp_path: Path, path: Path, code: int, *needles: str, preset: str = "fomm-small"):
    """Refused in one line with `code`; the file untouched, no model (half-)written."""
    before = path.read_bytes() if path.is_file() else None
    ws = tmp_path / "ws"
    result = swapdeck("import", "fomm", path, "-w", ws, "-m", "m", "--preset", preset)
    line = assert_fails(result, code, *needles)
    if before is not None:
        assert path.read_bytes() == before
    models = ws / "models"
    assert not models.exists() or [p.name for p in models.iterdir()] in ([], [".m.lock"])
    return line


@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])
@pytest.mark.parametrize("nested", [False, True], ids=["top", "in-state-dict"])
@pytest.mark.parametrize("how", ["os.system", "builtins.exec"])
def test_planted_payload_is_refused_and_never_runs(tmp_path, how, nested, legacy):
    marker = tmp_path / "pwned"
    payload = payloads(marker)[how]
    path = hostile_checkpoint(tmp_path / "vox-cpk.pth.tar", payload, nested=nested, legacy=legacy)
    wanted = "posix.system" if how == "os.system" else "exec"  # as torch names them
    line = _refused(tmp_path, path, ExitCode.CORRUPT, "refused", wanted, "nothing in it was run")
    assert str(path) in line
    assert not marker.exists()
    with pytest.raises(CorruptError):
        import_fomm(path, Workspace(tmp_path / "ws2"), "m")
    assert not marker.exists()


def _reshape(data: dict) -> None:
    data["generator"]["final.weight"] = torch.zeros(3, 16, 5, 5)


def _drop(data: dict) -> None:
    del data["kp_detector"]["kp.bias"]


def _extra(data: dict) -> None:
    data["generator"]["extra.weight"] = torch.zeros(3)


def _text(data: dict) -> None:
    data["kp_detector"]["kp.weight"] = "weights"


def _integers(data: dict) -> None:
    data["generator"]["final.bias"] = torch.zeros(3, dtype=torch.long)


def _no_generator(data: dict) -> None:
    del data["generator"]


@pytest.mark.parametrize(
    ("edit", "needles"),
    [
        (_reshape, ["generator.final.weight has shape [3, 16, 5, 5]", "needs [3, 16, 7, 7]"]),
        (_drop, ["weight kp_detector.kp.bias is missing"]),
        (_extra, ["generator.extra.weight is not a weight of the fomm-small network"]),
        (_text, ["kp_detector.kp.weight is str, not weights"]),
        (_integers, ["generator.final.bias is torch.int64, not weights"]),
        (_no_generator, ["has no 'generator' state dict"]),
        (lambda data: [data["generator"]["final.bias"]], ["holds a list"]),
    ],
    ids=["shape", "missing", "extra", "text", "integers", "no-generator", "not-a-dict"],
)
def test_misfit_checkpoints_are_refused(tmp_path, edit, needles):
    path = _small_file(tmp_path, edit)
    _refused(tmp_path, path, ExitCode.BAD_INPUT, *needles)


def test_vox_preset_refuses_a_small_network(tmp_path):
    path = _small_file(tmp_path)
    _refused(tmp_path, path, ExitCode.BAD_INPUT, "the vox-256 network needs", preset="vox-256")


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        (b"", "is not a PyTorch checkpoint"),
        (bytes(range(256)) * 40, "is not a PyTorch checkpoint"),
        (b"just some text\n", "is not a PyTorch checkpoint"),
        (b"PK\x03\x04 not really a zip", "is not a PyTorch checkpoint"),
    ],
    ids=["empty", "random", "text", "fake-zip"],
)
def test_files_that_are_not_checkpoints(tmp_path, content, needle):
    path = tmp_path / "vox-cpk.pth.tar"
    path.write_bytes(content)
    _refused(tmp_path, path, ExitCode.CORRUPT, needle)


def test_missing_file_and_folder(tmp_path):
    _refused(tmp_path, tmp_path / "nothere.pth.tar", ExitCode.NOT_FOUND, "no checkpoint file")
    _refused(tmp_path, tmp_path, ExitCode.BAD_INPUT, "is a folder")
    with pytest.raises(NotFoundError):
        import_fomm(tmp_path / "nothere", Workspace(tmp_path / "ws"), "m")


def test_not_a_fomm_preset(tmp_path):
    _refused(
        tmp_path,
        _small_file(tmp_path),
        ExitCode.BAD_INPUT,
        "tiny is not a fomm preset",
        preset="tiny",
    )


def test_batch_norm_counters_may_be_missing(tmp_path):
    """Files saved before torch kept batch norm's counter still import (it starts at 0)."""

    def strip(data: dict) -> None:
        for part in ("generator", "kp_detector"):
            for key in [k for k in data[part] if k.endswith("num_batches_tracked")]:
                del data[part][key]

    path = _small_file(tmp_path, strip)
    result = import_fomm(path, Workspace(tmp_path / "ws"), "old", preset="fomm-small")
    weights = tensors(Path(result.checkpoint))
    counter = weights["model.generator.first.norm.num_batches_tracked"]
    assert counter.dtype == torch.int64 and counter.item() == 0


def test_an_existing_model_is_never_replaced(tmp_path):
    ws = Workspace(tmp_path / "ws")
    path = _small_file(tmp_path)
    import_fomm(path, ws, "taken", preset="fomm-small")
    checkpoint = ws.model_dir("taken") / "checkpoint.safetensors"
    before = checkpoint.read_bytes()
    result = swapdeck(
        "import", "fomm", path, "-w", ws.root, "-m", "taken", "--preset", "fomm-small"
    )
    assert_fails(result, ExitCode.BAD_INPUT, "model taken already exists")
    assert checkpoint.read_bytes() == before
    with pytest.raises(BadInputError, match="not a plain name"):
        import_fomm(path, ws, "../escape", preset="fomm-small")


def test_reenactor_refusals(tmp_path, imported, ws):
    mine = Workspace(tmp_path / "ws")
    with pytest.raises(NotFoundError, match="no model 'nope'"):
        load_reenactor(mine, "nope")
    blank = ModelPaths(mine.model_dir("blank"))
    create_model(load_settings(ws.model_dir("vox") / "model.toml"), blank)
    with pytest.raises(BadInputError, match="model blank has no weights yet"):
        load_reenactor(mine, "blank")
    swapper = new_settings({"preset": "tiny", "faceset_a": "a", "faceset_b": "b"})
    create_model(swapper, ModelPaths(mine.model_dir("swapper")))
    with pytest.raises(BadInputError, match="swapper is a autoencoder model, not a fomm"):
        load_reenactor(mine, "swapper")

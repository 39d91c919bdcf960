"""Hostile files inside a workspace, each read by the command that reads it.

A damaged or foreign faceset.sqlite, model.toml or checkpoint.safetensors, names that
try to leave the workspace, and planted pickles: every case gives one clear line, its
exit code, no traceback, and leaves the file as it was. A pickle is never unpickled:
the marker its payload would create never appears.
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
import pickle
import re
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from cliutil import SAMPLE, assert_fails, swapdeck
from safetensors import safe_open
from safetensors.torch import save_file

from engine.errors import ExitCode

REPO = Path(__file__).resolve().parents[2]
PHOTO = SAMPLE / "a" / "a_000.jpg"
hostile = pytest.mark.report("hostile inputs rejected cleanly")
malicious = pytest.mark.report("malicious files refused unexecuted")


@pytest.fixture(scope="module")
def base(sample_workspace, tiny_model, tmp_path_factory) -> Path:
    """A copy of the session workspace: facesets a and b, model `tiny` with a checkpoint."""
    root = tmp_path_factory.mktemp("ws_files") / "ws"
    shutil.copytree(sample_workspace.root, root)
    return root


@pytest.fixture
def ws(base: Path, tmp_path: Path) -> Path:
    """A private copy to damage."""
    return Path(shutil.copytree(base, tmp_path / "ws"))


def digest(*paths: Path) -> dict[str, str]:
    """Each existing path's SHA-256 (folders: their files', by name)."""
    out = {}
    for path in paths:
        files = sorted(path.rglob("*")) if path.is_dir() else [path]
        for f in files:
            if f.is_file():
                out[str(f)] = hashlib.sha256(f.read_bytes()).hexdigest()
    return out


def train(ws: Path, *args: str) -> object:
    return swapdeck("train", "-w", ws, "--steps", "200", *args)


def convert(ws: Path, tmp: Path, model: str = "tiny") -> object:
    out = tmp / "out.png"
    return swapdeck("convert", PHOTO, "-w", ws, "-m", model, "-o", out, "--backend", "dlib")


# ---- faceset.sqlite ---------------------------------------------------------------------


def _zero(db: Path) -> None:
    db.write_bytes(b"")


def _random(db: Path) -> None:
    db.write_bytes(os.urandom(64 * 1024))


def _truncated(db: Path) -> None:
    data = db.read_bytes()
    db.write_bytes(data[: len(data) // 2])


def _foreign(db: Path) -> None:
    """A valid SQLite file of someone else's: no faceset tables."""
    import sqlite3

    db.unlink()
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT)")
    conn.execute("INSERT INTO notes(text) VALUES ('mine')")
    conn.commit()
    conn.close()


def _newer(db: Path) -> None:
    import sqlite3

    from engine.faceset import SCHEMA_VERSION

    conn = sqlite3.connect(db)
    conn.execute(
        "UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION + 1),)
    )
    conn.commit()
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()


FACESET_DAMAGE = {
    "zero-bytes": (_zero, "empty", "extract into a new faceset name"),
    "random-bytes": (_random, "not SQLite", "extract into a new faceset name"),
    "truncated": (_truncated, "truncated", "extract into a new faceset name"),
    "foreign-sqlite": (_foreign, "not a faceset", "extract into a new faceset name"),
    "newer-schema": (_newer, "newer swapdeck", "upgrade swapdeck"),
}


@hostile
@pytest.mark.parametrize("kind", FACESET_DAMAGE)
def test_damaged_faceset_is_refused_and_left_alone(ws: Path, tmp_path: Path, kind: str) -> None:
    damage, what, hint = FACESET_DAMAGE[kind]
    folder = ws / "facesets" / "a"
    damage(folder / "faceset.sqlite")
    before = digest(folder)
    for result in (
        swapdeck("faceset", "show", "a", "-w", ws),
        swapdeck("extract", PHOTO, "-w", ws, "-f", "a", "--backend", "dlib"),
        train(ws, "-m", "fresh", "-a", "a", "-b", "b"),
    ):
        line = assert_fails(result, ExitCode.CORRUPT, what, hint)
        assert "faceset" in line
        assert digest(folder) == before, "the damaged faceset was changed"
    assert not (ws / "models" / "fresh").exists()


# ---- model.toml -------------------------------------------------------------------------


def _toml_edit(pattern: str, repl: str):
    def edit(toml: Path) -> None:
        text = toml.read_text()
        assert re.search(pattern, text, flags=re.M), text
        toml.write_text(re.sub(pattern, repl, text, flags=re.M))

    return edit


def _as_folder(toml: Path) -> None:
    toml.unlink()
    toml.mkdir()


MODEL_TOML_DAMAGE = {
    "unknown-key": (_toml_edit(r"\Z", 'colour = "red"\n'), "colour"),
    "wrong-type": (_toml_edit(r"^size = .*$", 'size = "big"'), "size"),
    "not-toml": (lambda p: p.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00 [[[ = "), "not valid TOML"),
    "binary-utf8-toml": (lambda p: p.write_text("preset = [[[\n"), "not valid TOML"),
    "empty": (lambda p: p.write_bytes(b""), "faceset_a"),
    "nested-too-deep": (lambda p: p.write_text("x = " + "[" * 20000 + "]" * 20000), "TOML"),
    "a-folder": (_as_folder, "cannot read"),
}


@hostile
@pytest.mark.parametrize("kind", MODEL_TOML_DAMAGE)
def test_damaged_model_toml_is_refused(ws: Path, tmp_path: Path, kind: str) -> None:
    damage, what = MODEL_TOML_DAMAGE[kind]
    model = ws / "models" / "tiny"
    damage(model / "model.toml")
    before = digest(model)
    for result in (train(ws, "-m", "tiny"), convert(ws, tmp_path)):
        assert_fails(result, ExitCode.CORRUPT, "model.toml", what)
        assert digest(model) == before
    assert not (tmp_path / "out.png").exists()


# ---- checkpoint.safetensors -------------------------------------------------------------


def _parts(ckpt: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    with safe_open(str(ckpt), framework="pt") as f:
        return {k: f.get_tensor(k) for k in f.keys()}, f.metadata()  # noqa: SIM118


def _first(tensors: dict[str, torch.Tensor], prefix: str) -> str:
    return next(k for k, v in tensors.items() if k.startswith(prefix) and v.ndim >= 2)


def _random_bytes(ckpt: Path) -> None:
    ckpt.write_bytes(os.urandom(8192))


def _header_longer_than_file(ckpt: Path) -> None:
    data = ckpt.read_bytes()
    ckpt.write_bytes(struct.pack("<Q", len(data) * 1000) + data[8:])


def _absurd_offsets(ckpt: Path) -> None:
    data = ckpt.read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n])
    key = next(k for k in header if k != "__metadata__")
    header[key]["data_offsets"] = [0, 2**62]
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    ckpt.write_bytes(struct.pack("<Q", len(raw)) + raw + data[8 + n :])


def _rewrite(change):
    def damage(ckpt: Path) -> None:
        tensors, meta = _parts(ckpt)
        change(tensors, meta)
        save_file(tensors, str(ckpt), metadata=meta)

    return damage


def _wrong_shape(tensors: dict, meta: dict) -> None:
    key = _first(tensors, "model.")
    tensors[key] = torch.zeros(3, 3, 3, 3)


def _missing(tensors: dict, meta: dict) -> None:
    del tensors[_first(tensors, "model.")]


def _optimizer_shape(tensors: dict, meta: dict) -> None:
    tensors[_first(tensors, "optim.")] = torch.zeros(2, 2)


def _no_step(tensors: dict, meta: dict) -> None:
    meta["info"] = json.dumps({"note": "no step here"})


def _bad_rng(tensors: dict, meta: dict) -> None:
    tensors["rng.gen0"] = torch.zeros(7, dtype=torch.float32)


CHECKPOINT_DAMAGE = {
    "random-bytes": _random_bytes,
    "header-longer-than-file": _header_longer_than_file,
    "absurd-offsets": _absurd_offsets,
    "wrong-shape": _rewrite(_wrong_shape),
    "tensor-missing": _rewrite(_missing),
    "optimizer-wrong-shape": _rewrite(_optimizer_shape),
    "no-step": _rewrite(_no_step),
    "rng-not-a-state": _rewrite(_bad_rng),
}


@hostile
@pytest.mark.parametrize("kind", CHECKPOINT_DAMAGE)
def test_damaged_checkpoint_is_refused(ws: Path, tmp_path: Path, kind: str) -> None:
    ckpt = ws / "models" / "tiny" / "checkpoint.safetensors"
    CHECKPOINT_DAMAGE[kind](ckpt)
    before = digest(ckpt.parent)
    assert_fails(train(ws, "-m", "tiny"), ExitCode.CORRUPT, "checkpoint", "unusable")
    assert digest(ckpt.parent) == before
    result = convert(ws, tmp_path)
    if kind == "optimizer-wrong-shape":  # convert never reads the optimizer's state
        assert result.exit_code == 0, result.output
        return
    assert_fails(result, ExitCode.CORRUPT, "checkpoint", "unusable")
    assert digest(ckpt.parent) == before
    assert not (tmp_path / "out.png").exists()


# ---- names ------------------------------------------------------------------------------

BAD_NAMES = {
    "dot-dot": "..",
    "up-and-out": "../outside",
    "slash": "a/b",
    "absolute": "/tmp",
    "empty": "",
    "nul-byte": "x\0y",
    "dot": ".",
}


@hostile
@pytest.mark.parametrize("kind", BAD_NAMES)
def test_names_that_are_not_plain_are_refused(
    ws: Path, tmp_path: Path, kind: str, record_property
) -> None:
    name = BAD_NAMES[kind]
    outside = sorted(p.name for p in ws.parent.iterdir())
    inside = {k: v for k, v in digest(ws).items() if not k.endswith(".lock")}
    commands = [
        ("train", "-w", ws, "-m", name, "-a", "a", "-b", "b"),
        ("train", "-w", ws, "-m", "fresh", "-a", name, "-b", "b"),
        ("train", "-w", ws, "-m", "fresh", "-a", "a", "-b", name),
        ("convert", PHOTO, "-w", ws, "-m", name, "-o", tmp_path / "o.png"),
        ("extract", PHOTO, "-w", ws, "-f", name, "--backend", "dlib"),
        ("faceset", "show", name, "-w", ws),
    ]
    for args in commands:
        # An empty -a or -b is read as not given, which a new model cannot do without.
        empty_side = name == "" and args[4] == "fresh"
        needle = "needs -" if empty_side else "not a plain name"
        assert_fails(swapdeck(*args), ExitCode.BAD_INPUT, needle)
    for action in ("attach", "stop", "logs"):
        result = swapdeck("jobs", action, name, "-w", ws)
        assert result.exit_code in (ExitCode.BAD_INPUT, ExitCode.NOT_FOUND), result.output
        assert_fails(result, result.exit_code, "job")
    record_property("tried", len(commands) + 3)
    assert sorted(p.name for p in ws.parent.iterdir()) == outside
    assert not (ws / "models" / "fresh").exists()
    # Only a training lock file may be new (models/.fresh.lock: kept by design).
    after = {k: v for k, v in digest(ws).items() if not k.endswith(".lock")}
    assert after == inside


# ---- planted pickles --------------------------------------------------------------------


class Payload:
    """What a hostile pickle does when loaded: run a command (here, make a marker)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return os.system, (f"touch {self.marker}",)


@pytest.fixture
def marker(tmp_path: Path) -> Path:
    """The file a planted pickle would create; proven live before the test uses it."""
    path = tmp_path / "PWNED"
    probe = tmp_path / "probe"
    code = f"import pickle, sys; pickle.loads(open({str(probe)!r}, 'rb').read())"
    probe.write_bytes(pickle.dumps(Payload(path)))
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
    assert path.exists(), "the payload does not work, so its absence would prove nothing"
    path.unlink()
    return path


def raw_pickle(path: Path, marker: Path) -> Path:
    path.write_bytes(pickle.dumps({"model": Payload(marker)}))
    return path


def torch_pickle(path: Path, marker: Path) -> Path:
    """A .pt as torch.save writes it: a zip whose data.pkl holds the payload."""
    torch.save({"state_dict": {"w": torch.zeros(2)}, "x": Payload(marker)}, path)
    return path


PLANTERS = {"raw-pickle": raw_pickle, "torch-save-zip": torch_pickle}


@malicious
@pytest.mark.parametrize("kind", PLANTERS)
def test_pickle_as_checkpoint_is_refused_unexecuted(
    ws: Path, tmp_path: Path, marker: Path, kind: str
) -> None:
    ckpt = ws / "models" / "tiny" / "checkpoint.safetensors"
    PLANTERS[kind](ckpt, marker)
    before = digest(ckpt)
    assert_fails(train(ws, "-m", "tiny"), ExitCode.CORRUPT, "checkpoint", "unusable")
    assert_fails(convert(ws, tmp_path), ExitCode.CORRUPT, "checkpoint", "unusable")
    assert digest(ckpt) == before
    assert not marker.exists()


@malicious
def test_foreign_pickles_beside_a_model_are_never_read(
    ws: Path, tmp_path: Path, marker: Path
) -> None:
    """Files swapdeck does not own, planted where a careless tool would look: every
    command that walks the workspace goes on working and never opens them."""
    model = ws / "models" / "tiny"
    planted = [
        raw_pickle(model / "model.pkl", marker),
        torch_pickle(model / "model.pt", marker),
        torch_pickle(model / "model.pth", marker),
        torch_pickle(model / "last.ckpt", marker),
        raw_pickle(ws / "models" / "tiny" / "optimizer.bin", marker),
    ]
    (model / "snapshots").mkdir(exist_ok=True)
    planted.append(raw_pickle(model / "snapshots" / "step_99999999.safetensors", marker))
    planted.append(torch_pickle(model / "snapshots" / "step_00000001.pt", marker))
    planted.append(raw_pickle(ws / "facesets" / "a" / "faces.pkl", marker))
    (ws / "jobs" / "planted").mkdir(parents=True, exist_ok=True)
    planted.append(raw_pickle(ws / "jobs" / "planted" / "job.pkl", marker))
    before = digest(*planted)
    step = json.loads(_parts(model / "checkpoint.safetensors")[1]["info"])["step"]

    from engine.model_index import list_models
    from engine.workspace import Workspace

    assert swapdeck("train", "-w", ws, "-m", "tiny", "--steps", str(step + 2)).exit_code == 0
    assert convert(ws, tmp_path).exit_code == 0
    assert swapdeck("doctor", "-w", ws).exit_code == 0
    assert swapdeck("faceset", "show", "a", "-w", ws).exit_code == 0
    assert swapdeck("jobs", "list", "-w", ws).exit_code == 0
    assert [m["name"] for m in list_models(Workspace(ws))] == ["tiny"]
    assert not marker.exists()
    assert digest(*planted) == before


@malicious
@pytest.mark.parametrize("kind", PLANTERS)
def test_pickled_face_alignment_weights_are_refused_unexecuted(
    tmp_path: Path, marker: Path, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    """Weights under TORCH_HOME/hub/checkpoints that are pickles with a payload."""
    import torch.hub

    from engine.faces.backends.fan import WEIGHT_FILES

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(torch.hub, "_hub_dir", None)  # a set_dir() elsewhere would win
    hub = tmp_path / "home" / "hub" / "checkpoints"
    hub.mkdir(parents=True)
    for name in WEIGHT_FILES:
        PLANTERS[kind](hub / name, marker)

    def no_download(*args: object, **kwargs: object) -> None:
        raise AssertionError("present weights must not be downloaded")

    monkeypatch.setattr(torch.hub, "download_url_to_file", no_download)
    result = swapdeck("extract", PHOTO, "-w", tmp_path / "ws", "-f", "f", "--backend", "fan")
    assert_fails(result, ExitCode.UNAVAILABLE, "corrupt or unreadable", WEIGHT_FILES[0])
    assert not marker.exists()


# ---- the code itself --------------------------------------------------------------------


_UNPICKLERS = re.compile(r"(c?pickle|dill|cloudpickle|joblib|marshal|shelve)\.\w*(load|open)\w*")


def _runs_code(name: str, keywords: dict[str, str]) -> bool:
    """Whether a call named `name` with these keyword arguments could run a file's code."""
    if name in ("eval", "exec", "builtins.eval", "builtins.exec", "torch.jit.load"):
        return True
    if _UNPICKLERS.fullmatch(name) or name.endswith("Unpickler"):
        return True
    if name == "torch.load" or (name == "load" and "map_location" in keywords):
        return keywords.get("weights_only") != "True"
    if name in ("np.load", "numpy.load"):
        return keywords.get("allow_pickle") == "True"
    return name in ("yaml.load", "yaml.unsafe_load") and "SafeLoader" not in str(keywords)


def unsafe_calls(source: str, filename: str = "<source>") -> list[str]:
    """Calls in `source` that could run code from a file: unpickling, torch.load
    without weights_only=True, np.load with allow_pickle=True, eval and exec."""
    found = []
    for node in ast.walk(ast.parse(source, filename)):
        if isinstance(node, ast.Call):
            name = ast.unparse(node.func)
            keywords = {k.arg or "**": ast.unparse(k.value) for k in node.keywords}
            if _runs_code(name, keywords):
                found.append(f"{filename}:{node.lineno}: {name}")
    return found


@malicious
def test_no_code_path_unpickles_or_evaluates() -> None:
    bad = (
        "import pickle, torch, numpy as np\n"
        "pickle.load(f)\ntorch.load(p)\ntorch.load(p, weights_only=False)\n"
        "np.load(p, allow_pickle=True)\neval(s)\nexec(s)\n"
        "torch.load(p, weights_only=True)\nnp.load(p)\n"
    )
    assert len(unsafe_calls(bad)) == 6  # the scan finds what it is for
    found = []
    for folder in ("engine", "tui"):
        for path in sorted((REPO / folder).rglob("*.py")):
            found += unsafe_calls(path.read_text(encoding="utf-8"), str(path.relative_to(REPO)))
    assert found == []

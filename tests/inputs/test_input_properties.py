"""Property tests (hypothesis) for every reader of a file a workspace holds.

Whatever the bytes, a reader gives back something valid or raises a SwapdeckError;
never another exception. Valid configs survive a write and a read unchanged.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import sqlite3
import tempfile
import types
import typing
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tomli_w
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from engine.config import (
    ConvertConfig,
    ExtractConfig,
    RunSettings,
    build,
    load_toml,
    read_toml,
    save_toml,
)
from engine.errors import CorruptError, SwapdeckError
from engine.faceset import SCHEMA_VERSION, FaceRecord, Faceset
from engine.facesets import summarize
from engine.train.registry import settings_model

# model.toml of today's models: the autoencoder family's settings, built from its options.
ModelSettings = settings_model("autoencoder")

pytestmark = [pytest.mark.report("reader properties held (hypothesis)"), pytest.mark.slow]

# No example database in the repository; the examples are drawn fresh each run.
# SWAPDECK_PROPERTY_EXAMPLES=5000 searches harder (minutes) when a reader changes.
PROPERTY = settings(
    deadline=None,
    max_examples=int(os.environ.get("SWAPDECK_PROPERTY_EXAMPLES", "120")),
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
CONFIGS: list[type[BaseModel]] = [ModelSettings, RunSettings, ExtractConfig, ConvertConfig]


@pytest.fixture(scope="module")
def scratch() -> typing.Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="swapdeck-props-") as folder:
        yield Path(folder)


@contextlib.contextmanager
def fresh(scratch: Path) -> typing.Iterator[Path]:
    """An empty folder for one example, gone after it."""
    with tempfile.TemporaryDirectory(dir=scratch) as folder:
        yield Path(folder)


# ---- configs ------------------------------------------------------------------------------

names = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._-]{0,12}", fullmatch=True)
toml_scalars = st.one_of(
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(),
    st.text(max_size=20),
)
toml_values = st.recursive(
    toml_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=10,
)


def _for_type(annotation: Any) -> st.SearchStrategy[Any]:
    """Plausible values for a field's type, mixed with wrong ones."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        return st.one_of(*(_for_type(a) for a in args))
    if origin is typing.Literal:
        return st.sampled_from(args) | st.text(max_size=6)
    if origin is list:
        return st.lists(_for_type(args[0]), max_size=3)
    if origin is dict:
        return st.dictionaries(_for_type(args[0]), _for_type(args[1]), max_size=3)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return field_values(annotation)
    if annotation is type(None):
        return st.none()
    if annotation is bool:
        return st.booleans()
    if annotation is int:
        return st.integers(min_value=-5, max_value=5000)
    if annotation is float:
        return st.floats(min_value=-1, max_value=100) | st.floats()
    if annotation is Path:
        return st.text(min_size=1, max_size=30).map(Path)
    if annotation is str:
        return names | st.text(max_size=12)
    raise AssertionError(f"no strategy for {annotation!r}")


def field_values(cls: type[BaseModel], junk: bool = True) -> st.SearchStrategy[dict[str, Any]]:
    """Dicts of the class's fields: the required ones always, the others now and then.
    With `junk`, any field may hold any TOML value and strangers may come along."""
    hints = typing.get_type_hints(cls)
    required, optional = {}, {}
    for name, info in cls.model_fields.items():
        values = _for_type(hints[name])
        if junk:
            values = values | toml_values
        (required if info.is_required() else optional)[name] = values
    known = st.fixed_dictionaries(required, optional=optional)
    if not junk:
        return known
    strangers = st.dictionaries(st.text(min_size=1, max_size=8), toml_values, max_size=2)
    return st.tuples(known, strangers | st.just({})).map(lambda kv: {**kv[1], **kv[0]})


def _equal(a: BaseModel, b: BaseModel) -> bool:
    """Equal field by field, NaN counting as equal to itself."""
    for name in type(a).model_fields:
        x, y = getattr(a, name), getattr(b, name)
        if isinstance(x, float) and isinstance(y, float) and math.isnan(x) and math.isnan(y):
            continue
        if x != y:
            return False
    return True


@pytest.mark.parametrize("cls", CONFIGS, ids=lambda c: c.__name__)
@PROPERTY
@given(data=st.data())
def test_configs_build_or_refuse_and_round_trip(cls, data, scratch: Path) -> None:
    values = data.draw(field_values(cls, junk=data.draw(st.booleans())))
    try:
        config = build(cls, **values)
    except SwapdeckError as exc:
        assert "\n" not in exc.one_line()
        return
    path = scratch / "config.toml"  # rewritten by each example
    save_toml(config, path)
    again = load_toml(cls, path)
    assert _equal(again, config), (config, again)


@pytest.mark.parametrize("cls", CONFIGS, ids=lambda c: c.__name__)
@PROPERTY
@given(data=st.data())
def test_any_toml_document_loads_or_is_corrupt(cls, data, scratch: Path) -> None:
    document = data.draw(field_values(cls) | st.dictionaries(st.text(max_size=8), toml_values))
    try:
        text = tomli_w.dumps(document)
    except (TypeError, ValueError):
        return  # not representable as TOML (e.g. a list of tables mixed with values)
    path = scratch / "model.toml"
    path.write_text(text, encoding="utf-8")
    try:
        config = load_toml(cls, path)
    except CorruptError as exc:
        assert str(path) in exc.message
        return
    assert isinstance(config, cls)


@PROPERTY
@given(raw=st.binary(max_size=300) | st.text(max_size=300).map(str.encode))
def test_any_bytes_as_model_toml_read_or_corrupt(raw: bytes, scratch: Path) -> None:
    path = scratch / "model.toml"
    path.write_bytes(raw)
    try:
        assert isinstance(read_toml(path), dict)
        load_toml(ModelSettings, path)
    except CorruptError:
        pass


# ---- the faceset manifest -----------------------------------------------------------------


def _face(source: int, frame: int, idx: int, rng: np.random.Generator) -> FaceRecord:
    return FaceRecord(
        source_id=source,
        frame=frame,
        idx=idx,
        file=f"{source}_{frame:06d}_{idx}.png",
        box=[1.0, 2.0, 30.0, 40.0],
        landmarks=rng.random((68, 2), dtype=np.float32),
        matrix=rng.random((2, 3)),
        embedding=rng.random(128, dtype=np.float32) if idx == 0 else None,
        mask=b"\x89PNG fake" if idx == 0 else None,
        blur=float(rng.random()),
        yaw=1.0,
        pitch=-2.0,
        roll=0.5,
        score=0.9,
        tracked=bool(idx),
    )


@pytest.fixture(scope="module")
def small_faceset(scratch: Path) -> Path:
    """A real, small faceset made through the engine's writer: 2 sources, 7 faces."""
    folder = scratch / "faceset"
    rng = np.random.default_rng(0)
    with Faceset.open(folder, create=True) as faceset:
        faceset.check_geometry(64, 0.75)
        for s, name in enumerate(("clip.mp4", "photo.jpg")):
            source = faceset.source_id(scratch / name, "video" if s == 0 else "image", 3)
            for frame in range(3 - 2 * s):
                faces = [_face(source, frame, i, rng) for i in range(2 if s == 0 else 1)]
                for face in faces:
                    (faceset.faces_dir / face.file).write_bytes(b"png")
                faceset.commit_frame(source, frame, faces, tracks=[{"id": 1}])
    # Closing folded the write-ahead log into the file: all of it is in faceset.sqlite.
    assert not (folder / "faceset.sqlite-wal").exists()
    return folder


def read_everything(folder: Path) -> None:
    """Every reader of the manifest; what it returns must hang together."""
    with Faceset.open(folder) as faceset:
        faces = list(faceset.faces())
        assert faceset.count() == len(faces)
        for face in faces:
            assert (faceset.faces_dir / face.file).is_file()  # reconciled
            assert face.landmarks.shape == (68, 2)
        sources = faceset.sources()
        assert sum(int(s["faces"]) for s in sources) <= len(faces)  # type: ignore[call-overload]
        for s in sources:
            faceset.done_frames(int(s["id"]))  # type: ignore[call-overload]
            faceset.tracks_before(int(s["id"]), 10**6)  # type: ignore[call-overload]
        info = summarize(faceset)
        assert info["faces"] == len(faces)
        assert faceset.size == int(faceset.meta("size") or 0)


def test_the_small_faceset_reads(small_faceset: Path, scratch: Path) -> None:
    with fresh(scratch) as tmp:
        copy = Path(shutil.copytree(small_faceset, tmp / "f"))
        read_everything(copy)
        with Faceset.open(copy) as faceset:
            assert faceset.count() == 7 and len(faceset.sources()) == 2


@PROPERTY
@given(data=st.data())
def test_mutated_manifest_reads_consistently_or_is_corrupt(
    data: st.DataObject, small_faceset: Path, scratch: Path
) -> None:
    raw = bytearray((small_faceset / "faceset.sqlite").read_bytes())
    if data.draw(st.booleans()):  # a few random bytes anywhere, header included
        edits = st.tuples(st.integers(0, len(raw) - 1), st.integers(0, 255))
        for offset, value in data.draw(st.lists(edits, min_size=1, max_size=12)):
            raw[offset] = value
    else:  # a run of bytes overwritten inside one page
        start = data.draw(st.integers(0, len(raw) - 1))
        junk = data.draw(st.binary(min_size=1, max_size=64))
        raw[start : start + len(junk)] = junk
    if data.draw(st.integers(0, 9)) == 0:
        raw = raw[: data.draw(st.integers(0, len(raw)))]
    with fresh(scratch) as tmp:
        copy = Path(shutil.copytree(small_faceset, tmp / "f"))
        (copy / "faceset.sqlite").write_bytes(bytes(raw))
        try:
            read_everything(copy)
        except CorruptError as exc:
            assert "\n" not in exc.one_line()


stored_values = st.one_of(
    st.text(max_size=12),
    st.from_regex(r"[0-9]{1,3}", fullmatch=True),
    st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=False),
    st.binary(max_size=8),
)


@PROPERTY
@given(
    key=st.sampled_from(["schema_version", "size", "coverage"]),
    value=stored_values,
    tracks=st.none() | stored_values,
)
def test_any_meta_value_reads_or_is_corrupt(
    key: str, value: object, tracks: object, small_faceset: Path, scratch: Path
) -> None:
    with fresh(scratch) as tmp:
        copy = Path(shutil.copytree(small_faceset, tmp / "f"))
        conn = sqlite3.connect(copy / "faceset.sqlite")
        conn.execute("UPDATE meta SET value = ? WHERE key = ?", (value, key))
        if tracks is not None:
            conn.execute("UPDATE track_state SET tracks = ?", (tracks,))
        conn.commit()
        conn.close()
        try:
            read_everything(copy)
        except CorruptError:
            return
    if key == "schema_version":
        assert str(value).isdigit() and 1 <= int(str(value)) <= SCHEMA_VERSION


# ---- job records and metrics ---------------------------------------------------------------

lines_of_text = st.lists(
    st.one_of(
        st.text(max_size=40),
        toml_values.map(json.dumps),
        st.builds(
            lambda t, step: json.dumps({"type": t, "step": step, "stage": "train"}),
            st.sampled_from(["metrics", "progress", "finished", "failed", "info", "x"]),
            st.one_of(st.integers(), st.floats(), st.text(max_size=4), st.none()),
        ),
        st.integers(1, 3000).map(lambda n: "[" * n),
        st.just('{"step": Infinity}'),
    ),
    max_size=8,
).map("\n".join)


def _job_record() -> st.SearchStrategy[dict[str, Any]]:
    good = {
        "id": "m-1",
        "kind": "train",
        "model": "m",
        "workspace": "/nowhere",
        "command": ["swapdeck", "train"],
        "spec": {},
        "state": "finished",
        "pid": None,
        "create_time": None,
        "started": 1.0,
        "ended": 2.0,
        "exit_code": 0,
        "reason": "",
    }
    changed = st.dictionaries(st.sampled_from(sorted(good)), toml_values | st.none(), max_size=4)
    dropped = st.sets(st.sampled_from(sorted(good)), max_size=2)
    return st.tuples(changed, dropped).map(
        lambda cd: {k: v for k, v in {**good, **cd[0]}.items() if k not in cd[1]}
    )


@PROPERTY
@given(record=_job_record().map(json.dumps) | st.text(max_size=60), events=lines_of_text)
def test_job_records_read_or_are_refused(record: str, events: str, scratch: Path) -> None:
    from engine.events import CancelToken
    from engine.jobs import follow, get_job, list_jobs
    from engine.workspace import Workspace

    with fresh(scratch) as tmp:
        ws = Workspace(tmp)
        folder = ws.jobs_dir / "m-1"
        folder.mkdir(parents=True)
        (folder / "job.json").write_text(record, encoding="utf-8")
        (folder / "events.jsonl").write_text(events, encoding="utf-8")
        jobs = list_jobs(ws)  # a job it cannot read is left out, never a crash
        assert len(jobs) <= 1
        try:
            job = get_job(ws, "m-1")
        except SwapdeckError:
            assert not jobs
            return
        assert job.id == "m-1" and isinstance(job.state, str)
        if not job.running:
            cancel = CancelToken()
            for _ in follow(ws, job.id, cancel, poll=0.01):
                pass


@PROPERTY
@given(text=lines_of_text, raw=st.binary(max_size=200))
def test_metrics_readers_skip_bad_lines(text: str, raw: bytes, scratch: Path) -> None:
    from engine.model_index import last_step, read_metrics

    path = scratch / "metrics.jsonl"
    for content in (text.encode("utf-8"), raw, text.encode("utf-8") + b"\n" + raw):
        path.write_bytes(content)
        records = read_metrics(path)
        assert all(isinstance(r["step"], int) for r in records)
        step = last_step(path)
        assert step is None or isinstance(step, int)


@pytest.mark.parametrize("key", ["\n", "a\nb", "\x1b[2J"])
def test_an_unprintable_key_is_named_on_one_line(key: str) -> None:
    """Found by the property above: a key with a newline made the refusal two lines."""
    from engine.train.registry import settings_model

    with pytest.raises(SwapdeckError) as caught:
        build(settings_model("autoencoder"), **{key: [], "faceset_a": "x", "faceset_b": "y"})
    line = caught.value.one_line()
    assert line.isprintable() and repr(key) in line

"""The extract stage: photos and videos in, a faceset of aligned faces out.

Per frame, the main process finds the faces (engine.faces.finder: detect, fit
landmarks, follow faces from the previous frame); it aligns each face and hands
the crop to a worker process for the identity embedding and PNG encoding.
Frames are committed to the manifest in order, each with all its faces and its
track ids, so a cancelled or killed run resumes at the first frame not yet
committed and never adds a face twice.
"""

from __future__ import annotations

import multiprocessing
import os
import sqlite3
import time
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any

import cv2
import numpy as np

from engine.config import ExtractConfig, record_in_workspace
from engine.errors import (
    BadInputError,
    CancelledError,
    NoFacesError,
    NotFoundError,
    WorkspaceError,
)
from engine.events import (
    CancelToken,
    Finished,
    Progress,
    Sink,
    Started,
    Warning,
    null_sink,
)
from engine.faces.align import alignment_matrix, transform_points, warp_face
from engine.faces.finder import FaceFinder, FoundFrame
from engine.faces.finish import finish_face, init_worker, worker_ready
from engine.faces.identity import Embedder, nearest_distance, reference_embeddings
from engine.faces.mask import hull_mask
from engine.faces.pose import head_pose
from engine.faces.quality import sharpness
from engine.faces.tracking import Embedding, Track
from engine.faces.types import FoundFace
from engine.faceset import FaceRecord, Faceset
from engine.media.images import read_image
from engine.media.prefetch import prefetch
from engine.media.sources import SourceItem, expand_sources
from engine.media.video import VideoReader
from engine.results import ExtractResult
from engine.workspace import Workspace, atomic_write_bytes

# Frames in flight between detection and commit; bounds memory and lost work.
_IN_FLIGHT = 6
_PROGRESS_EVERY_S = 0.25


@dataclass
class _Candidate:
    face: FoundFace
    matrix: np.ndarray
    mask_png: bytes
    blur: float
    pose: tuple[float, float, float]
    job: Future[tuple[bytes, np.ndarray | None]]
    # Its own embedding (from `job`) or its track's, computed for an earlier frame.
    embedding: Embedding

    def resolved_embedding(self) -> np.ndarray:
        emb = self.embedding
        if isinstance(emb, Future):
            emb = emb.result()
        if isinstance(emb, tuple):  # the job's (png, embedding) pair
            emb = emb[1]
        return np.asarray(emb, dtype=np.float32)


@dataclass
class _PendingFrame:
    source_id: int
    frame: int
    tracks: list[Track] | None  # tracker state after this frame (video only)
    candidates: list[_Candidate]


@dataclass
class _Tally:
    frames: int = 0
    frames_seen: int = 0
    faces: int = 0
    tracked: int = 0
    skipped: int = 0
    bad_files: int = 0
    problems: list[str] = field(default_factory=list)
    # Faces this run turned away for not matching the reference photos, and the
    # nearest any of them came: what "no faces" must tell apart from finding none.
    not_matched: int = 0
    closest: float = float("inf")


class _InlineExecutor(Executor):
    """Runs jobs at once in this process: for one-core machines and tests."""

    def __init__(self) -> None:
        init_worker()

    def submit(self, fn, /, *args, **kwargs):  # type: ignore[no-untyped-def, override]
        future: Future[Any] = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as exc:
            future.set_exception(exc)
        return future


def _make_pool(workers: int | None) -> Executor:
    if workers is None:
        workers = max(1, (os.cpu_count() or 1) - 1)
    if workers <= 0:
        return _InlineExecutor()
    return ProcessPoolExecutor(
        max_workers=workers,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=init_worker,
    )


class _Extraction:
    def __init__(
        self,
        config: ExtractConfig,
        workspace: Workspace,
        sink: Sink,
        cancel: CancelToken,
        workers: int | None,
    ) -> None:
        self.config = config
        self.workspace = workspace
        self.sink = sink
        self.cancel = cancel
        self.workers = workers
        self.tally = _Tally()
        self.pending: deque[_PendingFrame] = deque()
        self.source_ids: set[int] = set()
        self._last_progress = 0.0
        self._started = time.monotonic()

    # ---- set-up ----------------------------------------------------------------------

    def run(self) -> ExtractResult:
        config = self.config
        faceset_dir = self.workspace.faceset_dir(config.faceset)
        # Sources are checked before the workspace is touched, so a typo creates nothing.
        skipped: list[str] = []
        items = expand_sources(list(config.sources), skipped)
        self.workspace.ensure()
        with _make_pool(self.workers) as pool:
            self.pool = pool
            # Start the workers now, so their model loading overlaps with ours.
            pool.submit(worker_ready)
            self._load_models()
            choice = self.finder.choice
            self.total = sum(-(-item.frames // config.every) for item in items)
            self.sink(
                Started(
                    stage="extract",
                    detail={
                        "backend": choice.name,
                        "backend_reason": choice.reason,
                        "backend_detail": self.finder.backend.describe(),
                        "sources": len(items),
                        "frames": self.total,
                        "faceset": config.faceset,
                    },
                )
            )
            for problem in skipped:
                self.sink(Warning(message=problem, hint="skipped; the rest goes on"))
            self.faceset = Faceset.open(faceset_dir, create=True)
            try:
                self.faceset.check_geometry(config.size, config.coverage)
                try:
                    for item in items:
                        if self.cancel.cancelled:
                            break
                        self._extract_source(item)
                finally:
                    self._drain()
                    self._progress(force=True)
                total_faces = self.faceset.count()
                # Judged on this run's sources, not the whole faceset: faces already in it
                # must not hide that the new sources hold none.
                found = sum(
                    int(s["faces"])  # type: ignore[call-overload]
                    for s in self.faceset.sources()
                    if s["id"] in self.source_ids
                )
            except sqlite3.OperationalError as exc:
                raise WorkspaceError(
                    f"cannot write the faceset manifest ({exc})", "free disk space and run again"
                ) from None
            finally:
                self.faceset.close()
        return self._finish(choice.name, choice.reason, total_faces, found)

    def _load_models(self) -> None:
        config = self.config
        self.finder = FaceFinder(
            config.backend, config.detector, config.device, config.min_face, sink=self.sink
        )
        self.embedder = Embedder()
        self.references = reference_embeddings(
            config.references, self.finder.backend, self.embedder
        )

    def _finish(self, backend: str, reason: str, total_faces: int, found: int) -> ExtractResult:
        tally = self.tally
        seconds = time.monotonic() - self._started
        if self.cancel.cancelled:
            raise CancelledError(
                f"extract cancelled after {tally.frames} new frames ({tally.faces} faces saved)",
                "run the same command again to resume",
            )
        result = ExtractResult(
            faceset=self.config.faceset,
            frames=tally.frames,
            faces=tally.faces,
            tracked=tally.tracked,
            skipped=tally.skipped,
            bad_files=tally.bad_files,
            total_faces=total_faces,
            backend=backend,
            backend_reason=reason,
            seconds=round(seconds, 3),
            frames_per_s=round(tally.frames / seconds, 3) if seconds > 0 else 0.0,
        )
        if tally.problems:
            raise BadInputError(
                tally.problems[0], "the faces found before it are kept; fix the file and rerun"
            )
        if found == 0 and tally.not_matched:
            photos = "photo" if len(self.references) == 1 else "photos"
            raise NoFacesError(
                f"no face matched the reference {photos}: {tally.not_matched} faces found, "
                f"the closest at distance {tally.closest:.2f}, above the threshold "
                f"{self.config.threshold:g}",
                "raise --threshold or use another reference photo, into a new faceset (-f): "
                "this one now counts these frames as done",
            )
        if found == 0 and tally.frames == 0 and tally.frames_seen and not tally.bad_files:
            # A rerun over frames an earlier run did: nothing was looked at again.
            raise NoFacesError(
                f"no faces: all {tally.frames_seen} frames of the sources were extracted into "
                f"faceset {self.config.faceset} before, and gave none",
                "to try other settings, extract into a new faceset (-f)",
            )
        if found == 0:
            raise NoFacesError(
                f"no faces found in {tally.frames_seen} frames of the sources",
                f"check that they show faces at least {self.config.min_face} px wide, "
                "or lower --min-face",
            )
        record_in_workspace(
            self.workspace.config_path, "facesets", self.config.faceset, self.config
        )
        self.sink(Finished(stage="extract", result=result.model_dump(mode="json")))
        return result

    # ---- per source ------------------------------------------------------------------

    def _frames(
        self, item: SourceItem, done: frozenset[int]
    ) -> Iterator[tuple[int, np.ndarray | None]]:
        if item.kind == "image":
            if 0 in done:
                return
            try:
                yield 0, read_image(item.path)
            except (BadInputError, NotFoundError) as exc:  # NotFound: gone since listed
                self._bad_file(item, exc.message)
                yield 0, None
            return
        reader = VideoReader(item.path, self.config.every, skip=done)
        yield from reader
        if reader.error:
            self._bad_file(item, f"{item.path}: {reader.error}")

    def _bad_file(self, item: SourceItem, message: str) -> None:
        self.tally.bad_files += 1
        self.sink(Warning(message=message, hint="skipped; the rest goes on"))
        if item.explicit:
            self.tally.problems.append(message)

    def _extract_source(self, item: SourceItem) -> None:
        info = item.video
        source_id = self.faceset.source_id(
            item.path,
            item.kind,
            item.frames,
            info.fps if info else None,
            info.width if info else None,
            info.height if info else None,
        )
        self.source_ids.add(source_id)
        done = self.faceset.done_frames(source_id)
        self.tally.frames_seen += len(done)

        def resume(index: int) -> tuple[list[Track], int]:
            # The first frame of this run for this source: carry on from the saved state.
            saved = self.faceset.tracks_before(source_id, index)
            return [Track.from_json(t) for t in saved], self.faceset.last_track(source_id)

        video = item.kind == "video"
        frames = ((index, image, None) for index, image in self._frames(item, done))
        found = self.finder.stream(
            prefetch(frames), video, every=self.config.every, resume=resume, cancel=self.cancel
        )
        for frame in found:
            if self.cancel.cancelled:
                return
            self.tally.frames_seen += 1
            if frame.image is None:
                continue
            self._process_frame(source_id, frame, video)
            self._progress()

    def _process_frame(self, source_id: int, found: FoundFrame[None], video: bool) -> None:
        assert found.image is not None
        self.tally.skipped += found.small
        candidates = [self._prepare(found.image, face) for face in found.faces]
        # Snapshot after _prepare, which updates the tracks' embeddings.
        tracks = [replace(t) for t in self.finder.tracker.tracks] if video else None
        self.pending.append(_PendingFrame(source_id, found.index, tracks, candidates))
        while len(self.pending) > _IN_FLIGHT or (self.pending and self._ready(self.pending[0])):
            self._commit(self.pending.popleft())

    def _prepare(self, image: np.ndarray, face: FoundFace) -> _Candidate:
        size = self.config.size
        matrix = alignment_matrix(face.landmarks, size, self.config.coverage)
        crop = warp_face(image, matrix, size)
        mask = hull_mask(transform_points(face.landmarks, matrix), size)
        track: Track | None = face.track
        embed = track is None or track.needs_embedding()
        chip = self.embedder.chip(image, face.landmarks) if embed else None
        job = self.pool.submit(finish_face, crop, chip)
        if track is not None:
            if embed:
                track.embedding, track.since_embed = job, 0
            else:
                track.since_embed += 1
        return _Candidate(
            face=face,
            matrix=matrix,
            mask_png=_encode_mask(mask),
            blur=sharpness(crop, mask),
            pose=head_pose(face.landmarks, image.shape[:2]),
            job=job,
            embedding=job if embed else track.embedding,  # type: ignore[union-attr]
        )

    @staticmethod
    def _ready(frame: _PendingFrame) -> bool:
        return all(c.job.done() for c in frame.candidates)

    def _drain(self) -> None:
        while self.pending:
            self._commit(self.pending.popleft())

    # ---- commit ----------------------------------------------------------------------

    def _commit(self, frame: _PendingFrame) -> None:
        kept: list[tuple[_Candidate, bytes, np.ndarray]] = []
        for cand in frame.candidates:
            png, _ = cand.job.result()
            embedding = cand.resolved_embedding()
            if len(self.references):
                gap = nearest_distance(embedding, self.references)
                if gap > self.config.threshold:
                    self.tally.skipped += 1
                    self.tally.not_matched += 1
                    self.tally.closest = min(self.tally.closest, gap)
                    continue
            kept.append((cand, png, embedding))
        if self.config.max_faces and len(kept) > self.config.max_faces:
            by_size = sorted(kept, key=lambda k: k[0].face.size, reverse=True)
            keep_ids = {id(k) for k in by_size[: self.config.max_faces]}
            self.tally.skipped += len(kept) - len(keep_ids)
            kept = [k for k in kept if id(k) in keep_ids]
        records = []
        for idx, (cand, png, embedding) in enumerate(kept):
            name = f"{frame.source_id:04d}-{frame.frame:06d}_{idx}.png"
            try:
                atomic_write_bytes(self.faceset.faces_dir / name, png, durable=False)
            except OSError as exc:
                raise WorkspaceError(
                    f"cannot write {self.faceset.faces_dir / name} ({exc.strerror})",
                    "free disk space and run again; the faces saved so far are kept",
                ) from None
            yaw, pitch, roll = cand.pose
            records.append(
                FaceRecord(
                    source_id=frame.source_id,
                    frame=frame.frame,
                    idx=idx,
                    file=name,
                    box=[round(float(v), 2) for v in cand.face.box],
                    landmarks=cand.face.landmarks,
                    matrix=cand.matrix,
                    embedding=embedding,
                    mask=cand.mask_png,
                    blur=cand.blur,
                    yaw=yaw,
                    pitch=pitch,
                    roll=roll,
                    score=cand.face.score,
                    tracked=cand.face.tracked,
                    track=None if cand.face.track is None else cand.face.track.id,
                )
            )
        tracks = None if frame.tracks is None else [t.to_json() for t in frame.tracks]
        self.faceset.commit_frame(frame.source_id, frame.frame, records, tracks)
        self.tally.frames += 1
        self.tally.faces += len(records)
        self.tally.tracked += sum(r.tracked for r in records)

    def _progress(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last_progress < _PROGRESS_EVERY_S:
            return
        self._last_progress = now
        elapsed = now - self._started
        tally = self.tally
        self.sink(
            Progress(
                stage="extract",
                done=tally.frames_seen,
                total=self.total,
                unit="frames",
                counts={
                    "faces": tally.faces,
                    "tracked": tally.tracked,
                    "skipped": tally.skipped,
                    "frames_per_s": round(tally.frames / elapsed, 2) if elapsed > 0 else 0.0,
                },
            )
        )


def _encode_mask(mask: np.ndarray) -> bytes:
    ok, data = cv2.imencode(".png", mask)
    if not ok:
        raise ValueError("mask encoding failed")
    return data.tobytes()


def extract(
    config: ExtractConfig,
    workspace: Workspace,
    sink: Sink = null_sink,
    cancel: CancelToken | None = None,
    workers: int | None = None,
) -> ExtractResult:
    """Find, align and store the faces in `config.sources` into a faceset.

    Emits Started, Progress, Warning/Info and Finished events to `sink`;
    checks `cancel` between frames. Returns the result the Finished event
    carries as a dict. Raises a SwapdeckError for bad input, no faces, or cancellation.
    `workers` is the number of embedding processes (None: cores - 1; 0: inline).
    """
    return _Extraction(config, workspace, sink, cancel or CancelToken(), workers).run()

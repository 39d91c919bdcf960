"""`reenact --preview-frames N`: a few driving frames and what they make of each portrait,
on one marked PNG, to judge the options before a whole video is written."""

from __future__ import annotations

from typing import TYPE_CHECKING

import cv2
import numpy as np

from engine.config import ReenactConfig
from engine.convert.video_io import InputVideo
from engine.events import CancelToken
from engine.reenact.crop import CropBox, Shot
from engine.reenact.portraits import Portrait, fetch_crops
from engine.workspace import atomic_write_bytes

if TYPE_CHECKING:
    from engine.train.families.fomm.inference import Reenactor

TILE = 192  # px of each picture on the sheet


def _tile(image: np.ndarray) -> np.ndarray:
    """The picture fitted into a TILE square on grey."""
    h, w = image.shape[:2]
    scale = TILE / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
    out = np.full((TILE, TILE, 3), 128, np.uint8)
    y0, x0 = (TILE - size[1]) // 2, (TILE - size[0]) // 2
    out[y0 : y0 + size[1], x0 : x0 + size[0]] = cv2.resize(image, size, interpolation=interp)
    return out


def picks(shots: list[Shot], count: int) -> list[tuple[int, int]]:
    """`count` (shot, frame) pairs spread evenly over the frames of shots with a face."""
    spans = [(n, s.start, s.end) for n, s in enumerate(shots) if s.box is not None]
    total = sum(end - start for _, start, end in spans)
    chosen = []
    for k in sorted({int(v) for v in np.linspace(0, total - 1, min(count, total)).round()}):
        for n, start, end in spans:
            if k < end - start:
                chosen.append((n, start + k))
                break
            k -= end - start
    return chosen


def render_preview(
    config: ReenactConfig,
    video: InputVideo,
    shots: list[Shot],
    portraits: list[Portrait],
    refs: dict[tuple[int, int], int],
    model: Reenactor,
    cancel: CancelToken,
) -> int:
    """Write the sheet to config.output: the portraits along the top, then a row per
    driving frame (its crop, then each portrait moved by it). Returns the frames shown."""
    from engine.provenance import encode_image, mark_frame
    from engine.train.families.fomm.motion import relative_motion

    chosen = picks(shots, config.preview_frames)
    wanted: dict[int, CropBox] = {}
    for n, index in chosen:
        box = shots[n].box
        assert box is not None
        wanted[index] = box
        if config.relative:
            wanted.update({refs[p, n]: box for p in range(len(portraits))})
    crops = fetch_crops(video, wanted, model.size, cancel)
    order = sorted(crops)
    kp_all = model.keypoints(np.stack([crops[i] for i in order]))
    kp_of = {i: {k: v[j : j + 1] for k, v in kp_all.items()} for j, i in enumerate(order)}
    columns = []
    for p, portrait in enumerate(portraits):
        moved = []
        for n, index in chosen:
            initial = kp_of[refs[p, n]] if config.relative else portrait.kp
            kp = relative_motion(
                portrait.kp,
                kp_of[index],
                initial,
                relative=config.relative,
                adapt_scale=config.adapt_scale,
            )
            moved.append(_tile(portrait.finish(model.animate(portrait.crop, portrait.kp, kp)[0])))
        columns.append(moved)
    blank = np.full((TILE, TILE, 3), 255, np.uint8)
    rows = [np.concatenate([blank, *(_tile(p.still()) for p in portraits)], 1)]
    for k, (_, index) in enumerate(chosen):
        rows.append(np.concatenate([_tile(crops[index]), *(c[k] for c in columns)], 1))
    sheet = mark_frame(np.concatenate(rows, 0))
    atomic_write_bytes(config.output, encode_image(sheet, ".png"))
    return len(chosen)

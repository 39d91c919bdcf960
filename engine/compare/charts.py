"""The pictures of a compare report: loss curves, and a contact sheet of the converted clip.

`loss_chart` draws every model's training losses against time and against examples
seen, so models that train at different speeds can be judged both ways.
`contact_sheet` puts the same frames of the original clip and of each model's
conversion side by side, with the face zoomed, because a swap is judged by eye.

matplotlib is imported inside `loss_chart`: importing this module stays cheap, and
no global backend is chosen (the Agg canvas is attached to the one figure).
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import av
import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from engine.errors import BadInputError, NotFoundError
from engine.faces.backends.base import FaceBackend
from engine.media.video import check_video_stream, ffmpeg_reason, probe_video, upright_rgb
from engine.workspace import atomic_write_bytes

# ---- loss chart --------------------------------------------------------------------------

# One colour per model, in the order the series are given (matplotlib's tab10, which
# stays distinguishable for the colour-blind better than a rainbow).
COLOURS = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
)
# One line style per loss name, in the order the names first appear: solid, dashed, ...
LINE_STYLES = ("-", "--", ":", "-.")
CHART_INCHES = (12.0, 4.5)
CHART_DPI = 100


@dataclass(frozen=True)
class LossSeries:
    """One model's logged losses: `losses[name][i]` was logged at `seconds[i]`, `examples[i]`."""

    label: str
    seconds: list[float]
    examples: list[int]
    losses: dict[str, list[float]]

    @property
    def points(self) -> int:
        return len(self.seconds)


def loss_chart(series: Sequence[LossSeries], path: Path, title: str = "") -> Path:
    """Write a PNG of every model's losses against training time and examples seen.

    One colour per model (the same in both panels), one line style per loss name,
    log-scale y. A series with no points is left out; with none left, the panels
    say "no losses logged". Written atomically; returns `path`.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=CHART_INCHES, dpi=CHART_DPI)
    FigureCanvasAgg(fig)
    by_time, by_examples = fig.subplots(1, 2)
    styles = _line_styles(series)
    drawn = False
    for index, one in enumerate(series):
        if not one.points:
            continue
        colour = COLOURS[index % len(COLOURS)]
        for name, values in one.losses.items():
            # A loss logged for fewer points than the others is drawn for those it has,
            # rather than losing the whole chart to a mismatch.
            n = min(len(values), len(one.seconds), len(one.examples))
            if not n:
                continue
            style = {"color": colour, "linestyle": styles[name], "linewidth": 1.8}
            by_time.plot(one.seconds[:n], values[:n], label=f"{one.label} {name}", **style)
            by_examples.plot(one.examples[:n], values[:n], **style)
            drawn = True
    for ax, xlabel in ((by_time, "training time (s)"), (by_examples, "examples seen")):
        ax.set_xlabel(xlabel)
        ax.set_ylabel("loss")
        ax.grid(True, which="both", alpha=0.3)
        if drawn:
            ax.set_yscale("log", nonpositive="mask")
        else:
            ax.text(0.5, 0.5, "no losses logged", ha="center", va="center", transform=ax.transAxes)
    if drawn:
        by_time.legend(fontsize=8, loc="upper right")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=CHART_DPI)
    atomic_write_bytes(path, buffer.getvalue())
    return path


def _line_styles(series: Sequence[LossSeries]) -> dict[str, str]:
    """Loss name -> line style, in the order names first appear over all series, so "a" is
    drawn the same way for every model."""
    styles: dict[str, str] = {}
    for one in series:
        for name in one.losses:
            if name not in styles:
                styles[name] = LINE_STYLES[len(styles) % len(LINE_STYLES)]
    return styles


# ---- contact sheet -----------------------------------------------------------------------

# The zoom box is the largest face's detector box grown this much around its centre,
# so hair line, chin and the blend's edge are in view.
# The face box (brows to chin) with a margin: the swapped region and a little around it.
ZOOM = 1.25
# Without a face, the zoom row shows a centred square this fraction of the shorter side.
CENTRE_FRACTION = 0.5
# Detection runs on frames shrunk to this longer side at most: HOG's time grows with the
# pixels, and a face too small to see there is too small to judge on the sheet anyway.
DETECT_MAX_SIDE = 960
# Frames looked at per chosen slot when the middle one shows no face (at 1/2, 1/4, 3/4).
_SLOT_TRIES = (0.5, 0.25, 0.75)

PAD = 6  # between cells, and around the sheet
HEADER_H = 22  # the column labels
LABEL_H = 18  # the line above each row
BACKGROUND = (255, 255, 255)
_Font = ImageFont.ImageFont | ImageFont.FreeTypeFont
TEXT = (0, 0, 0)


@dataclass(frozen=True)
class SheetInfo:
    """A written contact sheet: which frames it shows and whether a face was zoomed.

    `boxes[i]` is the square (x0, y0, x1, y1) cut for frame `frame_indices[i]`'s zoom
    row, in the original's pixels: the face box grown ZOOM times, or the centre square.
    """

    path: Path
    frame_indices: list[int]
    face_found: list[bool]
    size: tuple[int, int]
    boxes: list[tuple[int, int, int, int]]


@dataclass(frozen=True)
class SheetLayout:
    """Where each cell of a contact sheet lies: a header, then per frame a label line, the
    full frames, a label line and the zoomed squares; `columns` = 1 + outputs."""

    columns: int
    frames: int
    width: int  # every cell's width
    cell_height: int  # the full frames' height; zoom cells are width x width

    @property
    def block(self) -> int:
        """The height one frame takes: its two labelled rows and the gap after them."""
        return LABEL_H + self.cell_height + LABEL_H + self.width + PAD

    @property
    def size(self) -> tuple[int, int]:
        return (
            PAD + self.columns * (self.width + PAD),
            HEADER_H + self.frames * self.block + PAD,
        )

    def x(self, column: int) -> int:
        return PAD + column * (self.width + PAD)

    def full_cell(self, row: int, column: int) -> tuple[int, int, int, int]:
        """(x0, y0, x1, y1) of frame `row`'s full-frame cell in `column`."""
        y = HEADER_H + row * self.block + LABEL_H
        return self.x(column), y, self.x(column) + self.width, y + self.cell_height

    def zoom_cell(self, row: int, column: int) -> tuple[int, int, int, int]:
        """(x0, y0, x1, y1) of frame `row`'s zoom cell in `column`."""
        y = HEADER_H + row * self.block + LABEL_H + self.cell_height + LABEL_H
        return self.x(column), y, self.x(column) + self.width, y + self.width


def contact_sheet(
    original: Path,
    outputs: Sequence[tuple[str, Path]],
    path: Path,
    frames: int = 4,
    width: int = 320,
    backend: FaceBackend | None = None,
) -> SheetInfo:
    """Write a PNG of the same frames of `original` and of each (label, output) conversion.

    `frames` frame indices are spread evenly over the clip (never its first or last
    frame), preferring frames where a face is found in the original. Each frame gets a
    row of full frames `width` px wide and a row of zooms: the original's largest face
    box grown ZOOM times, cut from every column (the centre square where no face was
    found). Faces are found with `backend`, by default dlib's HOG (the cheapest). Only
    frame indices every video has are used. Written atomically.
    """
    if frames < 1:
        raise BadInputError(
            f"a contact sheet needs at least 1 frame, not {frames}", "ask for 1 frame or more"
        )
    if width < 16:
        raise BadInputError(
            f"a contact sheet's columns need at least 16 px, not {width}", "ask for a wider one"
        )
    videos = [("original", original), *outputs]
    total = min(
        [
            _frame_count("the original clip", original),
            *(_frame_count(f"the output of {label}", video) for label, video in outputs),
        ]
    )

    slots = _slots(total, frames)
    tries = sorted({i for slot in slots for i in slot})
    seen, times = _decode(original, set(tries))
    detect = _Detector(backend)
    chosen: list[int] = []
    boxes: list[tuple[int, int, int, int] | None] = []
    for slot in slots:
        pick, box = _pick(slot, seen, detect)
        if pick is not None and pick not in chosen:
            chosen.append(pick)
            boxes.append(box)

    columns = [{i: seen[i] for i in chosen}]
    del seen  # the frames only looked at for faces can go before the outputs are decoded
    for _, video in outputs:
        got, _ = _decode(video, set(chosen))
        columns.append(got)
    # An output may end before the original (or its header may promise more frames than
    # it holds): keep the frames every column has.
    keep = [k for k, i in enumerate(chosen) if all(i in column for column in columns)]
    if not keep:
        raise BadInputError(
            f"no frame could be read from all of {', '.join(str(v) for _, v in videos)}",
            "check the converted videos are complete",
        )
    chosen = [chosen[k] for k in keep]
    boxes = [boxes[k] for k in keep]

    height, frame_width = columns[0][chosen[0]].shape[:2]
    squares = [box or _centre_square(frame_width, height) for box in boxes]
    layout = SheetLayout(
        columns=len(videos),
        frames=len(chosen),
        width=width,
        cell_height=max(1, round(width * height / frame_width)),
    )
    sheet = _render(
        layout,
        [label for label, _ in videos],
        [[column[i] for column in columns] for i in chosen],
        squares,
        [(i, times.get(i), box is not None) for i, box in zip(chosen, boxes, strict=True)],
    )
    buffer = io.BytesIO()
    sheet.save(buffer, format="PNG")
    atomic_write_bytes(path, buffer.getvalue())
    return SheetInfo(
        path=path,
        frame_indices=chosen,
        face_found=[box is not None for box in boxes],
        size=sheet.size,
        boxes=squares,
    )


def _frame_count(what: str, video: Path) -> int:
    if not video.exists():
        raise NotFoundError(f"{what} is not there: {video}", "check the path, or convert again")
    return probe_video(video).frames  # raises BadInputError for what is not a video


def _slots(total: int, frames: int) -> list[list[int]]:
    """For each of `frames` even slices of the clip, the indices to try, best first.

    The first and last frames are left out (fades, black frames, encoder warm-up) when
    the clip has more than two.
    """
    lo, hi = (1, total - 2) if total > 2 else (0, total - 1)
    span = hi - lo + 1
    if span < 1:
        return []
    frames = min(frames, span)
    slots = []
    for k in range(frames):
        start = lo + span * k / frames
        size = span / frames
        tries = [min(hi, math.floor(start + size * t)) for t in _SLOT_TRIES]
        slots.append(list(dict.fromkeys(tries)))
    return slots


def _decode(path: Path, wanted: set[int]) -> tuple[dict[int, np.ndarray], dict[int, float]]:
    """The RGB frames at `wanted` indices (decoding order, as convert counts them), and
    their times in seconds from the first frame. Stops after the last one wanted; a
    frame the file does not have (cut short, undecodable) is simply not returned."""
    found: dict[int, np.ndarray] = {}
    times: dict[int, float] = {}
    if not wanted:
        return found, times
    last = max(wanted)
    try:
        with av.open(str(path)) as container:
            stream = check_video_stream(path, container)
            stream.thread_type = "AUTO"
            first: float | None = None
            for index, frame in enumerate(container.decode(stream)):
                if first is None and frame.time is not None:
                    first = frame.time
                if index in wanted:
                    found[index] = upright_rgb(frame)
                    if frame.time is not None and first is not None:
                        times[index] = frame.time - first
                if index >= last:
                    break
    except (av.error.FFmpegError, OSError, ValueError) as exc:
        if not found:
            raise BadInputError(
                f"{path} is not a readable video ({ffmpeg_reason(exc)})",
                "check the file is complete; re-encode it if it plays elsewhere",
            ) from None
    return found, times


class _Detector:
    """The largest face's box in a frame, or None; the backend is loaded on first use."""

    def __init__(self, backend: FaceBackend | None) -> None:
        self.backend = backend

    def largest(self, image: np.ndarray) -> np.ndarray | None:
        if self.backend is None:
            from engine.faces.backends import load_backend

            self.backend = load_backend("dlib", "hog")
        h, w = image.shape[:2]
        scale = min(1.0, DETECT_MAX_SIDE / max(h, w))
        small = image
        if scale < 1.0:
            size = (max(1, round(w * scale)), max(1, round(h * scale)))
            small = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
        found = self.backend.detect(np.ascontiguousarray(small))
        if not found:
            return None
        best = max(found, key=lambda d: d.width * d.height)
        return np.asarray(best.box, dtype=np.float64) / scale


def _pick(
    slot: list[int], seen: dict[int, np.ndarray], detect: _Detector
) -> tuple[int | None, tuple[int, int, int, int] | None]:
    """The first index of the slot whose frame shows a face, with its zoom square; else the
    slot's first readable index and None."""
    readable = [i for i in slot if i in seen]
    for index in readable:
        box = detect.largest(seen[index])
        if box is not None:
            h, w = seen[index].shape[:2]
            return index, _zoom_square(box, w, h)
    return (readable[0] if readable else None), None


def _zoom_square(box: np.ndarray, width: int, height: int) -> tuple[int, int, int, int]:
    """The face box grown ZOOM times into a square about its centre, moved (not cut) to
    stay inside the frame, so every zoom cell is a whole square of picture."""
    x0, y0, x1, y1 = (float(v) for v in box)
    side = min(round(ZOOM * max(x1 - x0, y1 - y0)), width, height)
    side = max(side, 1)
    left = min(max(round((x0 + x1) / 2 - side / 2), 0), width - side)
    top = min(max(round((y0 + y1) / 2 - side / 2), 0), height - side)
    return left, top, left + side, top + side


def _centre_square(width: int, height: int) -> tuple[int, int, int, int]:
    side = max(1, round(min(width, height) * CENTRE_FRACTION))
    left, top = (width - side) // 2, (height - side) // 2
    return left, top, left + side, top + side


def _resize(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    # INTER_AREA shrinks without aliasing; a zoom that enlarges needs cubic instead.
    shrink = size[0] * size[1] <= image.shape[0] * image.shape[1]
    mode = cv2.INTER_AREA if shrink else cv2.INTER_CUBIC
    return cv2.resize(image, size, interpolation=mode)


def _cut(image: np.ndarray, square: tuple[int, int, int, int], base: tuple[int, int]) -> np.ndarray:
    """`square`, given in the original's (width, height) `base`, cut from `image`, which
    may be another size (an output converted at another size is scaled, not misread)."""
    h, w = image.shape[:2]
    sx, sy = w / base[0], h / base[1]
    x0, y0, x1, y1 = square
    left, top = round(x0 * sx), round(y0 * sy)
    right, bottom = max(left + 1, round(x1 * sx)), max(top + 1, round(y1 * sy))
    return image[top:bottom, left:right]


def _render(
    layout: SheetLayout,
    labels: list[str],
    rows: list[list[np.ndarray]],
    squares: list[tuple[int, int, int, int]],
    captions: list[tuple[int, float | None, bool]],
) -> Image.Image:
    sheet = Image.new("RGB", layout.size, BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default()
    for column, label in enumerate(labels):
        draw.text((layout.x(column), 4), _fit_text(draw, font, label, layout.width), TEXT, font)
    for row, (images, square, (index, seconds, face)) in enumerate(
        zip(rows, squares, captions, strict=True)
    ):
        base = (images[0].shape[1], images[0].shape[0])
        when = f", {seconds:.2f} s" if seconds is not None else ""
        zoom = f"face, {ZOOM:g}x its box" if face else "no face found: the frame's centre"
        full_y = layout.full_cell(row, 0)[1]
        zoom_y = layout.zoom_cell(row, 0)[1]
        draw.text((PAD, full_y - LABEL_H + 3), f"frame {index}{when}", TEXT, font)
        draw.text((PAD, zoom_y - LABEL_H + 3), zoom, TEXT, font)
        for column, image in enumerate(images):
            full = _resize(image, (layout.width, layout.cell_height))
            sheet.paste(Image.fromarray(full), layout.full_cell(row, column)[:2])
            crop = _resize(_cut(image, square, base), (layout.width, layout.width))
            sheet.paste(Image.fromarray(crop), layout.zoom_cell(row, column)[:2])
    return sheet


def _fit_text(draw: ImageDraw.ImageDraw, font: _Font, text: str, width: int) -> str:
    """`text` shortened with "..." until it fits `width` px (model names can be long)."""
    if draw.textlength(text, font=font) <= width:
        return text
    while text and draw.textlength(text + "...", font=font) > width:
        text = text[:-1]
    return text + "..."

"""The mean face that alignment maps landmarks onto.

MEAN_FACE_68 holds the 68 iBUG points of a frontal, upright, left-right
symmetric face, scaled so its inner points (17-67: brows, nose, eyes, mouth)
span [0, 1] on the longer side and centred on (0.5, 0.5). It was built by
`python -m engine.faces.mean_face`: landmarks from the two public-domain
portraits in sample_data's sources and their mirror images, aligned to each
other with similarity transforms (generalised Procrustes), then averaged.
"""

from __future__ import annotations

import numpy as np

# Index of each point's mirror partner (left/right swapped), iBUG 68 layout.
MIRROR_68 = np.array(
    list(range(16, -1, -1))  # jaw
    + list(range(26, 21, -1))
    + list(range(21, 16, -1))  # brows
    + [27, 28, 29, 30]  # nose bridge
    + [35, 34, 33, 32, 31]  # nostrils
    + [45, 44, 43, 42, 47, 46]  # right eye <- left eye
    + [39, 38, 37, 36, 41, 40]  # left eye <- right eye
    + [54, 53, 52, 51, 50, 49, 48]  # outer lip top
    + [59, 58, 57, 56, 55]  # outer lip bottom
    + [64, 63, 62, 61, 60]  # inner lip top
    + [67, 66, 65]  # inner lip bottom
)

MEAN_FACE_68 = np.array(
    [
        [-0.087028, 0.306185],
        [-0.069298, 0.458131],
        [-0.048210, 0.602230],
        [-0.019149, 0.749471],
        [0.029293, 0.890248],
        [0.105257, 1.014709],
        [0.221517, 1.111629],
        [0.347862, 1.185922],
        [0.500000, 1.205464],
        [0.652138, 1.185922],
        [0.778483, 1.111629],
        [0.894743, 1.014709],
        [0.970707, 0.890248],
        [1.019149, 0.749471],
        [1.048210, 0.602230],
        [1.069298, 0.458131],
        [1.087028, 0.306185],
        [0.000000, 0.198024],
        [0.061466, 0.107180],
        [0.163223, 0.079382],
        [0.270187, 0.085714],
        [0.368818, 0.123011],
        [0.631182, 0.123011],
        [0.729813, 0.085714],
        [0.836777, 0.079382],
        [0.938534, 0.107180],
        [1.000000, 0.198024],
        [0.500000, 0.244276],
        [0.500000, 0.357572],
        [0.500000, 0.461041],
        [0.500000, 0.567802],
        [0.370661, 0.622971],
        [0.433768, 0.642412],
        [0.500000, 0.658687],
        [0.566232, 0.642412],
        [0.629339, 0.622971],
        [0.129596, 0.265691],
        [0.189708, 0.217249],
        [0.266960, 0.217249],
        [0.333132, 0.280169],
        [0.260526, 0.286527],
        [0.186310, 0.286694],
        [0.666868, 0.280169],
        [0.733040, 0.217249],
        [0.810292, 0.217249],
        [0.870404, 0.265691],
        [0.813690, 0.286694],
        [0.739474, 0.286527],
        [0.246627, 0.785544],
        [0.337159, 0.764271],
        [0.430495, 0.757651],
        [0.500000, 0.775315],
        [0.569505, 0.757651],
        [0.662841, 0.764271],
        [0.753373, 0.785544],
        [0.666007, 0.870443],
        [0.572505, 0.909115],
        [0.500000, 0.920618],
        [0.427495, 0.909115],
        [0.333993, 0.870443],
        [0.280804, 0.793463],
        [0.430727, 0.801215],
        [0.500000, 0.811238],
        [0.569273, 0.801215],
        [0.719196, 0.793463],
        [0.569338, 0.847524],
        [0.500000, 0.855568],
        [0.430662, 0.847524],
    ],
    dtype=np.float64,
)


def _procrustes_mean(shapes: list[np.ndarray], rounds: int = 10) -> np.ndarray:
    from skimage.transform import SimilarityTransform

    mean = shapes[0].copy()
    for _ in range(rounds):
        aligned = []
        for shape in shapes:
            tform = SimilarityTransform.from_estimate(shape, mean)
            aligned.append(tform(shape))
        mean = np.mean(aligned, axis=0)
    return mean


def _normalise(points: np.ndarray) -> np.ndarray:
    inner = points[17:]
    lo, hi = inner.min(axis=0), inner.max(axis=0)
    scale = (hi - lo).max()
    return (points - (lo + hi) / 2) / scale + 0.5


def _rebuild() -> np.ndarray:
    import importlib.util
    from pathlib import Path

    import dlib
    from matplotlib import cbook
    from PIL import Image
    from skimage import data

    spec = importlib.util.find_spec("face_recognition_models")
    assert spec is not None and spec.origin is not None
    models = Path(spec.origin).parent / "models"
    detector = dlib.get_frontal_face_detector()
    predictor = dlib.shape_predictor(str(models / "shape_predictor_68_face_landmarks.dat"))
    with Image.open(cbook.get_sample_data("grace_hopper.jpg")) as hopper:
        images = [data.astronaut(), np.asarray(hopper.convert("RGB"))]
    shapes = []
    for image in images:
        rect = max(detector(image, 1), key=lambda r: r.area())
        pts = np.array([(p.x, p.y) for p in predictor(image, rect).parts()], dtype=np.float64)
        mirrored = pts[MIRROR_68].copy()
        mirrored[:, 0] = -mirrored[:, 0]
        shapes += [pts, mirrored]
    mean = _procrustes_mean(shapes)
    # Rotate so the eye line is level, then symmetrise exactly.
    eyes = mean[36:42].mean(axis=0), mean[42:48].mean(axis=0)
    angle = np.arctan2(eyes[1][1] - eyes[0][1], eyes[1][0] - eyes[0][0])
    c, s = np.cos(-angle), np.sin(-angle)
    mean = mean @ np.array([[c, s], [-s, c]])
    mirrored = mean[MIRROR_68].copy()
    mirrored[:, 0] = 2 * mean[27:31, 0].mean() - mirrored[:, 0]
    return _normalise((mean + mirrored) / 2)


if __name__ == "__main__":
    rows = ",\n".join(f"        [{x:.6f}, {y:.6f}]" for x, y in _rebuild())
    print(rows)

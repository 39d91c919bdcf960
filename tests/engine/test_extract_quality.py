"""Extract on the bundled sample data: faces found, landmarks sane, identities apart."""

from __future__ import annotations

import numpy as np

from engine.faces.align import template, transform_points
from engine.faceset import Faceset
from engine.media.images import is_image_path
from engine.workspace import Workspace


def _faces(ws: Workspace, name: str) -> list:
    with Faceset.open(ws.faceset_dir(name)) as fs:
        return list(fs.faces())


def test_a_face_is_found_in_nearly_every_image(sample_workspace, sample_data):
    for name in ("a", "b"):
        images = [p for p in (sample_data / name).iterdir() if is_image_path(p)]
        frames_with_face = {(f.source_id, f.frame) for f in _faces(sample_workspace, name)}
        rate = len(frames_with_face) / len(images)
        assert len(images) >= 40
        assert rate >= 0.95, f"{name}: face found in {rate:.0%} of images"


def test_landmarks_are_sane(sample_workspace):
    for name in ("a", "b"):
        with Faceset.open(sample_workspace.faceset_dir(name)) as fs:
            size = fs.size
            coverage = float(fs.meta("coverage") or 0)
            faces = list(fs.faces())
        expected = template(size, coverage)
        expected_iod = np.linalg.norm(expected[36:42].mean(0) - expected[42:48].mean(0))
        for face in faces:
            # In the frame: eyes above the mouth (faces are no more than ~45 deg tilted).
            lm = face.landmarks
            eyes = (lm[36:42].mean(0) + lm[42:48].mean(0)) / 2
            mouth = lm[48:68].mean(0)
            assert eyes[1] < mouth[1]
            # In the aligned crop: the eyes sit where the mean face puts them.
            crop = transform_points(lm, face.matrix)
            iod = np.linalg.norm(crop[36:42].mean(0) - crop[42:48].mean(0))
            # Head turns foreshorten the eye line; garbage landmarks land far outside this.
            assert 0.6 * expected_iod < iod < 1.25 * expected_iod, (face.file, face.yaw)
            assert np.all((crop > -0.1 * size) & (crop < 1.1 * size))
            assert crop[36:48, 1].mean() < crop[48:68, 1].mean()


def test_same_identity_is_closer_than_the_other(sample_workspace):
    emb = {n: np.stack([f.embedding for f in _faces(sample_workspace, n)]) for n in ("a", "b")}
    centroid = {n: e.mean(axis=0) for n, e in emb.items()}
    for name, other in (("a", "b"), ("b", "a")):
        own = np.linalg.norm(emb[name] - centroid[name], axis=1)
        far = np.linalg.norm(emb[name] - centroid[other], axis=1)
        # Allow a false detection or two (e.g. a patch on a suit) to sit anywhere.
        assert np.mean(own < far) >= 0.95
        within = np.linalg.norm(emb[name][:, None] - emb[name][None], axis=2)
        across = np.linalg.norm(emb[name][:, None] - emb[other][None], axis=2)
        assert np.median(within) < np.median(across)


def test_every_row_has_its_file_and_every_file_its_row(sample_workspace):
    for name in ("a", "b"):
        folder = sample_workspace.faceset_dir(name)
        rows = {f.file for f in _faces(sample_workspace, name)}
        files = {p.name for p in (folder / "faces").glob("*.png")}
        assert rows == files
        assert len(rows) > 0

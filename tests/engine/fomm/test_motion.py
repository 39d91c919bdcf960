"""Relative motion, adapt-scale and best-frame selection on hand-made keypoints."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from engine.train.families.fomm.motion import (
    best_frame,
    hull_area,
    normalised_landmarks,
    relative_motion,
)

SQUARE = [[-0.5, -0.5], [0.5, -0.5], [0.5, 0.5], [-0.5, 0.5]]  # side 1, area 1


def kp(values, jacobians=None) -> dict[str, torch.Tensor]:
    value = torch.tensor(values, dtype=torch.float32)
    if value.ndim == 2:
        value = value[None]
    if jacobians is None:
        jac = torch.eye(2).expand(*value.shape[:2], 2, 2).clone()
    else:
        jac = torch.tensor(jacobians, dtype=torch.float32)
    return {"value": value, "jacobian": jac}


def test_hull_area():
    assert hull_area(np.array(SQUARE)) == pytest.approx(1.0)
    inside = np.array([*SQUARE, [0.0, 0.0], [0.2, -0.1]])  # inner points change nothing
    assert hull_area(inside) == pytest.approx(1.0)
    assert hull_area(np.array([[0, 0], [2, 0], [0, 3]])) == pytest.approx(3.0)
    assert hull_area(np.array([[0, 0], [1, 1], [2, 2]])) == 0.0  # collinear
    assert hull_area(np.array([[0, 0], [1, 1]])) == 0.0


def test_relative_displacement_lands_on_the_source():
    source = kp([[0.1, 0.2], [0.3, -0.4], [-0.2, 0.0]])
    initial = kp([[0.0, 0.0], [0.5, 0.5], [-0.5, 0.5]])
    driving = kp([[[0.0, 0.0], [0.5, 0.5], [-0.5, 0.5]], [[0.1, -0.1], [0.5, 0.7], [-0.5, 0.5]]])
    out = relative_motion(source, driving, initial)
    # Frame 0 is the reference frame itself: the source's own keypoints.
    assert torch.allclose(out["value"][0], source["value"][0])
    # Frame 1 moved keypoint 0 by (0.1, -0.1) and keypoint 1 by (0, 0.2).
    want = torch.tensor([[0.2, 0.1], [0.3, -0.2], [-0.2, 0.0]])
    assert torch.allclose(out["value"][1], want, atol=1e-6)
    assert out["value"].shape == (2, 3, 2)


def test_relative_jacobian_composes_driving_change_with_source():
    j_source = [[[[2.0, 0.0], [0.0, 1.0]]]]  # (1, 1, 2, 2): stretched in x
    j_initial = [[[[1.0, 0.0], [0.0, 2.0]]]]  # stretched in y
    j_driving = [[[[0.0, -2.0], [1.0, 0.0]]]]  # initial, then rotated 90 degrees
    source = kp([[0.0, 0.0]], j_source)
    initial = kp([[0.0, 0.0]], j_initial)
    driving = kp([[0.0, 0.0]], j_driving)
    out = relative_motion(source, driving, initial)
    # J_d inv(J_init) = rotation R = [[0, -1], [1, 0]]; R @ J_s = [[0, -1], [2, 0]].
    assert torch.allclose(out["jacobian"][0, 0], torch.tensor([[0.0, -1.0], [2.0, 0.0]]))
    # Same driving as initial: the source's Jacobian unchanged.
    same = relative_motion(source, initial, initial)
    assert torch.allclose(same["jacobian"], source["jacobian"])


def test_adapt_scale_is_the_ratio_of_hull_sides():
    source = kp([[2 * x, 2 * y] for x, y in SQUARE])  # area 4
    initial = kp([[0.5 * x, 0.5 * y] for x, y in SQUARE])  # area 0.25
    moved = initial["value"] + torch.tensor([0.1, 0.05])
    driving = {"value": moved, "jacobian": initial["jacobian"]}
    out = relative_motion(source, driving, initial, adapt_scale=True)
    # sqrt(4 / 0.25) = 4: the displacement (0.1, 0.05) becomes (0.4, 0.2).
    assert torch.allclose(out["value"] - source["value"], torch.tensor([0.4, 0.2]).expand(1, 4, 2))
    plain = relative_motion(source, driving, initial)
    assert torch.allclose(
        plain["value"] - source["value"], torch.tensor([0.1, 0.05]).expand(1, 4, 2)
    )


def test_adapt_scale_with_a_degenerate_reference_keeps_the_motion():
    source = kp(SQUARE)
    initial = kp([[0.0, 0.0], [0.1, 0.1], [0.2, 0.2], [0.3, 0.3]])  # a line: no area
    driving = {"value": initial["value"] + 0.1, "jacobian": initial["jacobian"]}
    out = relative_motion(source, driving, initial, adapt_scale=True)
    assert torch.allclose(out["value"], source["value"] + 0.1)


def test_absolute_mode_is_the_driving_keypoints():
    source, initial = kp(SQUARE), kp([[0.0, 0.0]] * 4)
    driving = kp(
        [[0.3, 0.3], [0.1, 0.2], [0.0, -0.5], [0.9, 0.9]], [[[[1.0, 2.0], [3.0, 4.0]]] * 4]
    )
    out = relative_motion(source, driving, initial, relative=False, adapt_scale=True)
    assert out["value"] is driving["value"] and out["jacobian"] is driving["jacobian"]


def _face(scale: float, shift: tuple[float, float], mouth_open: float) -> np.ndarray:
    """68 made-up landmarks: a ring (jaw and brows) plus a mouth that opens."""
    t = np.linspace(0, 2 * np.pi, 48, endpoint=False)
    ring = np.stack([np.cos(t), np.sin(t)], axis=1)
    u = np.linspace(0, 2 * np.pi, 20, endpoint=False)
    mouth = np.stack([0.3 * np.cos(u), 0.4 + mouth_open * np.sin(u)], axis=1)
    return np.concatenate([ring, mouth]) * scale + np.array(shift)


def test_normalised_landmarks_ignore_position_and_size():
    a = normalised_landmarks(_face(1.0, (0, 0), 0.1))
    b = normalised_landmarks(_face(37.0, (120, 80), 0.1))
    assert a.shape == (68, 2)
    assert np.allclose(a, b)
    assert np.allclose(a.mean(axis=0), 0)
    assert hull_area(a) == pytest.approx(1.0)


def test_best_frame_picks_the_nearest_expression_and_skips_missing():
    source = _face(50.0, (200, 200), 0.12)
    driving = [
        _face(100.0, (300, 100), 0.0),
        None,
        _face(80.0, (10, 10), 0.11),  # nearest, at another size and place
        _face(50.0, (200, 200), 0.3),  # same place and size, other expression
        None,
    ]
    assert best_frame(source, driving) == 2
    assert best_frame(source, [None, driving[3]]) == 1


def test_best_frame_without_any_landmarks():
    with pytest.raises(ValueError, match="no driving frame"):
        best_frame(_face(1.0, (0, 0), 0.1), [None, None])
    with pytest.raises(ValueError):
        best_frame(_face(1.0, (0, 0), 0.1), [])

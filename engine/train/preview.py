"""The preview grid: per held-out face, A→A, A→B and B→B, B→A beside the originals."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch

from engine.workspace import DIR_MODE, atomic_write_bytes


@torch.no_grad()
def render_preview(
    model: torch.nn.Module, faces_a: torch.Tensor, faces_b: torch.Tensor, path: Path, scale: int = 2
) -> Path:
    """Rows: one held-out face each. Columns: A, A→A, A→B | B, B→B, B→A. PNG, atomic."""
    was_training = model.training
    model.eval()
    try:
        rows = []
        n = min(len(faces_a), len(faces_b))
        xa = faces_a[:n].float() / 255
        xb = faces_b[:n].float() / 255
        cols = [xa, model(xa, "a")[0], model(xa, "b")[0], xb, model(xb, "b")[0], model(xb, "a")[0]]
        for i in range(n):
            rows.append(torch.cat([c[i].float().clamp(0, 1) for c in cols], dim=2))
        grid = torch.cat(rows, dim=1)
    finally:
        model.train(was_training)
    rgb = (grid.permute(1, 2, 0).cpu().numpy() * 255 + 0.5).astype(np.uint8)
    if scale > 1:
        rgb = cv2.resize(rgb, None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST)
    return save_png(rgb, path)


def save_png(rgb: np.ndarray, path: Path) -> Path:
    """An (H, W, 3) uint8 RGB image as a PNG at `path`, atomically (previews of every family)."""
    ok, data = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    if not ok:
        raise ValueError("preview encoding failed")
    path.parent.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
    atomic_write_bytes(path, data.tobytes())
    return path

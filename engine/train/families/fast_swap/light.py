"""The lighting network behind Fast Face-swap's light loss, and the relighting it learns from.

The paper trains a small siamese network on Extended Yale B (the same people under
many lights) so that its FC features are close for images lit alike and far apart
for different lights; the light loss is the squared distance between the input's and
the output's features. We have no Yale B, so we make its kind of data: faces of the
workspace shaded by a Lambertian light on an approximate face shape (an ellipsoid),
from nine fixed directions. The network is trained on pairs of DIFFERENT faces, half
of them lit alike, so what it keeps is the light and not who is lit.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

# The face ellipse in crop coordinates ([-1, 1], x right, y down) for a crop whose face
# spans about 3/4 of it (extract's default coverage): jaw to jaw about +-0.75, chin
# about +0.84, hairline near the top edge.
_CENTRE = (0.0, -0.08)
_AXES = (0.8, 0.95)
# Near the rim the ellipsoid's normals fold into the flat, camera-facing background,
# so no seam shows where the face ends.
_RIM = 0.3
AMBIENT = 0.2
_MAX_GAIN = 4.0
_EPS = 1e-6


def _lights(off_axis_deg: float = 40.0, around: int = 8) -> torch.Tensor:
    """Frontal, then `around` directions `off_axis_deg` away from the camera axis."""
    tilt = math.radians(off_axis_deg)
    rows = [(0.0, 0.0, 1.0)]
    for k in range(around):
        phi = 2 * math.pi * k / around
        rows.append(
            (math.sin(tilt) * math.cos(phi), math.sin(tilt) * math.sin(phi), math.cos(tilt))
        )
    return torch.tensor(rows, dtype=torch.float32)


# (K, 3) unit directions toward the light (x right, y down, z toward the camera).
LIGHTS = _lights()
INPUT_SIZE = 64
FEATURES = 64
MARGIN = 1.0  # distance on the unit sphere different lights are pushed beyond
LR = 1e-3


def face_normals(size: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """(3, S, S) unit normals of an aligned face crop: an ellipsoid (as deep as it is
    wide) over the face, blending into flat, camera-facing normals outside it."""
    coords = (torch.arange(size, device=device, dtype=torch.float32) + 0.5) / size * 2 - 1
    py = ((coords - _CENTRE[1]) / _AXES[1])[:, None].expand(size, size)
    px = ((coords - _CENTRE[0]) / _AXES[0])[None, :].expand(size, size)
    r2 = px.square() + py.square()
    depth = (1 - r2).clamp(min=0).sqrt()
    # Ellipsoid x^2/a^2 + y^2/b^2 + z^2/a^2 = 1: normal along (x/a^2, y/b^2, z/a^2).
    bulge = torch.stack([px, py * _AXES[0] / _AXES[1], depth])
    bulge = F.normalize(bulge, dim=0)
    r = r2.sqrt()
    t = ((1 - r) / _RIM).clamp(0, 1)
    weight = t * t * (3 - 2 * t)  # smoothstep: 0 at the rim, 1 a band inside it
    flat = torch.tensor([0.0, 0.0, 1.0], device=device)[:, None, None]
    return F.normalize(weight * bulge + (1 - weight) * flat, dim=0)


def relight(faces: torch.Tensor, light: torch.Tensor, strength: torch.Tensor) -> torch.Tensor:
    """Shade aligned face crops with a directional light.

    faces (B,3,S,S) in [0,1]; light (B,3) unit directions toward the light (x right,
    y down, z toward the camera: a light with x < 0 lights the image's left side and
    darkens its right); strength (B,) in [0,1], 0 leaves a face as it is. Lambertian
    shading on `face_normals`, ambient + (1-ambient)*max(0, n.l), scaled so each face's
    mean brightness stays about the same. Returns (B,3,S,S) in [0,1].
    """
    x = faces.float()
    normals = face_normals(x.shape[-1], x.device)
    lit = torch.einsum("bc,chw->bhw", light.float().to(x.device), normals).clamp(min=0)
    shade = (AMBIENT + (1 - AMBIENT) * lit)[:, None]
    relit = x * shade
    # Keep the mean brightness: the light changes where the face is bright, not how much.
    gain = x.mean(dim=(1, 2, 3)) / (relit.mean(dim=(1, 2, 3)) + _EPS)
    relit = relit * gain.clamp(max=_MAX_GAIN)[:, None, None, None]
    s = strength.float().to(x.device)[:, None, None, None]
    return (x + s * (relit - x)).clamp(0, 1)


class LightNet(nn.Module):
    """A small CNN (about 80k weights) from a face, resized to 64 px, to a unit-length
    64-d FC feature vector that describes how the face is lit."""

    def __init__(self, features: int = FEATURES) -> None:
        super().__init__()

        def block(cin: int, cout: int, k: int) -> list[nn.Module]:
            return [nn.Conv2d(cin, cout, k, stride=2, padding=k // 2), nn.LeakyReLU(0.2)]

        # Strided convs down to 4x4, then FC layers that see where the light falls.
        self.convs = nn.Sequential(
            *block(3, 16, 5), *block(16, 32, 3), *block(32, 64, 3), *block(64, 32, 3)
        )
        self.fc = nn.Sequential(
            nn.Flatten(),
            nn.Linear(32 * (INPUT_SIZE // 16) ** 2, 64),
            nn.LeakyReLU(0.2),
            nn.Linear(64, features),
        )

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """x (B,3,S,S) in [0,1], any S → (B, features) unit vectors."""
        x = x.float()
        if x.shape[-2:] != (INPUT_SIZE, INPUT_SIZE):
            x = F.interpolate(
                x, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear", antialias=True,
                align_corners=False,
            )  # fmt: skip
        # Each face standardised on its own: exposure and contrast are not the light's
        # direction, and the content loss already looks after them.
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        std = x.std(dim=(1, 2, 3), keepdim=True)
        x = (x - mean) / (std + 1e-3)
        return F.normalize(self.fc(self.convs(x)), dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)


def _to_input(faces: torch.Tensor, idx: torch.Tensor, device: torch.device) -> torch.Tensor:
    """Faces idx of a uint8 pool as floats in [0,1] at the network's input size."""
    x = faces[idx.to(faces.device)].to(device).float().div_(255)
    if x.shape[-1] != INPUT_SIZE:
        # Relighting at 64 px is what the network would see anyway, and far cheaper.
        x = F.interpolate(
            x, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear", antialias=True, align_corners=False
        )
    return x


def train_light(
    net: LightNet,
    faces: torch.Tensor,
    steps: int,
    generator: torch.Generator,
    batch: int = 32,
) -> list[float]:
    """Train `net` as a siamese network on synthetically relit faces; returns each
    step's loss.

    faces (N,3,S,S) uint8 on any device (N >= 2). Each step draws `batch` pairs of
    different faces (each maybe flipped), lights the first of a pair with LIGHTS[k1]
    and the second with LIGHTS[k2], k2 == k1 for half the pairs, and applies the
    contrastive loss: squared distance for pairs lit alike, squared shortfall below
    MARGIN for the others. Its own Adam (not kept). All randomness comes from
    `generator`, on whatever device it lives. Leaves `net` in eval mode, frozen.
    """
    n = int(faces.shape[0])
    if n < 2:
        raise ValueError("the lighting network needs at least two faces to train on")
    device = next(net.parameters()).device
    draw = generator.device
    lights = LIGHTS.to(device)
    k = len(LIGHTS)
    alike = torch.arange(batch, device=device) < batch // 2
    net.train()
    net.requires_grad_(True)
    optim = torch.optim.Adam(net.parameters(), lr=LR)
    losses: list[float] = []
    for _ in range(steps):
        first = torch.randint(0, n, (batch,), generator=generator, device=draw)
        # A nonzero offset: the two faces of a pair are never the same face.
        second = (first + torch.randint(1, n, (batch,), generator=generator, device=draw)) % n
        k1 = torch.randint(0, k, (batch,), generator=generator, device=draw).to(device)
        offset = torch.randint(1, k, (batch,), generator=generator, device=draw).to(device)
        k2 = torch.where(alike, k1, (k1 + offset) % k)
        flip = (torch.rand(2 * batch, generator=generator, device=draw) < 0.5).to(device)
        x = _to_input(faces, torch.cat([first, second]), device)
        x = torch.where(flip[:, None, None, None], x.flip(-1), x)
        x = relight(x, lights[torch.cat([k1, k2])], torch.ones(2 * batch, device=device))
        f = net.features(x)
        dist = (f[:batch] - f[batch:]).norm(dim=1)
        loss = torch.where(alike, dist.square(), (MARGIN - dist).clamp(min=0).square()).mean()
        optim.zero_grad(set_to_none=True)
        loss.backward()
        optim.step()
        losses.append(float(loss.detach()))
    optim.zero_grad(set_to_none=True)  # no stale gradients left on a frozen network
    net.eval()
    net.requires_grad_(False)
    return losses


def light_loss(net: LightNet, out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Squared distance between the lighting features of `out` and `target` (target's
    detached), averaged over the batch, relative to the mean squared length of target's
    features (1 for this network's unit vectors; kept so the weight means the same for
    any feature scale)."""
    f_out = net.features(out).float()
    with torch.no_grad():
        f_target = net.features(target).float()
    distance = (f_out - f_target).square().sum(dim=1).mean()
    return distance / (f_target.square().sum(dim=1).mean() + _EPS)

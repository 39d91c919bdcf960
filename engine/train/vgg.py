"""VGG-19 features for perceptual losses, with torchvision's ImageNet weights.

Shared by every family that compares images in VGG-19's feature space: FOMM
(relu1_1 .. relu5_1, the authors' Vgg19 module) and Fast Face-swap (relu3_1,
relu4_1 for style, relu4_2 for content). torchvision is not a dependency, so
the layers are written here in torchvision's `features` layout: its published
file `vgg19-dcbb9e9d.pth` loads as it is. swapdeck never downloads it: it is
found at --vgg-weights PATH or in torch hub's cache, and read with
`weights_only=True` (tensors only, nothing executed).
"""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path

import torch
from torch import nn

from engine.errors import CorruptError, UnavailableError

WEIGHTS_FILE = "vgg19-dcbb9e9d.pth"

# torchvision's VGG-19 configuration "E": conv widths, "M" for a 2x2 max pool.
_LAYOUT: tuple[int | str, ...] = (
    64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M",
    512, 512, 512, 512, "M", 512, 512, 512, 512, "M",
)  # fmt: skip
# The FOMM authors' five slices end after these `features` indices (the ReLUs of
# conv1_1, conv2_1, conv3_1, conv4_1 and conv5_1); the default taps.
SLICE_ENDS = (2, 7, 12, 21, 30)
# Where each named ReLU's output is: `features[:end]` ends with it.
RELU_ENDS = {
    "relu1_1": 2, "relu2_1": 7, "relu3_1": 12, "relu4_1": 21, "relu4_2": 23, "relu5_1": 30,
}  # fmt: skip
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _features(upto: int) -> nn.Sequential:
    """torchvision's `vgg19().features[:upto]`, index for index (so its keys line up)."""
    layers: list[nn.Module] = []
    channels = 3
    for item in _LAYOUT:
        if item == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        else:
            conv = nn.Conv2d(channels, int(item), kernel_size=3, padding=1)
            layers += [conv, nn.ReLU(inplace=True)]  # in place, as torchvision's
            channels = int(item)
    return nn.Sequential(*layers[:upto])


def expected_shapes(upto: int = SLICE_ENDS[-1]) -> dict[str, tuple[int, ...]]:
    """The `features.*` weights the loss needs and their shapes (a torchvision state dict's)."""
    return {f"features.{k}": tuple(v.shape) for k, v in _features(upto).state_dict().items()}


def full_features() -> nn.Sequential:
    """All of torchvision's VGG-19 `features` (37 modules): what its published file holds."""
    return _features(len(_LAYOUT) * 2)


class Vgg19(nn.Module):
    """Frozen VGG-19 in eval mode: x in [0, 1] (B,3,H,W) -> the feature maps after each
    of `ends` (`features` indices, ascending; see RELU_ENDS), FOMM's five by default."""

    def __init__(self, ends: tuple[int, ...] = SLICE_ENDS) -> None:
        super().__init__()
        if not ends or list(ends) != sorted(set(ends)):
            raise ValueError(f"VGG-19 taps must ascend, got {ends}")
        self.ends = tuple(ends)
        self.features = _features(self.ends[-1])
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), False)
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> Vgg19:
        return super().train(False)  # always eval: a loss network, never trained

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        h = (x - self.mean) / self.std
        out = []
        start = 0
        for end in self.ends:
            for layer in self.features[start:end]:
                h = layer(h)
            out.append(h)
            start = end
        return out


def hub_weights_path() -> Path:
    """Where torch hub keeps torchvision's file (honours TORCH_HOME at each call)."""
    return Path(torch.hub.get_dir()) / "checkpoints" / WEIGHTS_FILE


def weights_status(configured: str = "") -> tuple[bool, Path]:
    """(found, path): the file `configured` names, else torch hub's cached copy."""
    path = Path(configured).expanduser() if configured else hub_weights_path()
    return path.is_file(), path


def find_weights(configured: str = "", purpose: str = "FOMM's perceptual loss") -> Path:
    """The VGG-19 weights file, or one UnavailableError saying which file goes where
    (`purpose`: what needs it, for the message)."""
    found, path = weights_status(configured)
    if found:
        return path
    if configured:
        raise UnavailableError(
            f"VGG-19 weights not found at {path} (--vgg-weights)",
            f"give torchvision's ImageNet {WEIGHTS_FILE} there, "
            f"or put it in {hub_weights_path().parent}",
        )
    raise UnavailableError(
        f"{purpose} needs VGG-19's ImageNet weights: {WEIGHTS_FILE} is not in {path.parent}",
        f"copy torchvision's {WEIGHTS_FILE} into that folder, or give --vgg-weights PATH",
    )


def _read_state(path: Path) -> dict[str, torch.Tensor]:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, zipfile.BadZipFile, ValueError) as exc:
        why = " ".join(str(exc).split())[:160] or type(exc).__name__
        raise CorruptError(
            f"{path} is not a plain weights file ({why})",
            f"use torchvision's ImageNet {WEIGHTS_FILE}",
        ) from None
    except OSError as exc:
        raise UnavailableError(
            f"cannot read VGG-19 weights {path} ({exc.strerror})", "check its permissions"
        ) from None
    if not isinstance(state, dict):
        raise CorruptError(
            f"{path} holds a {type(state).__name__}, not VGG-19's weights",
            f"use torchvision's ImageNet {WEIGHTS_FILE}",
        )
    return state


def load_vgg19(
    path: Path, device: torch.device | str = "cpu", ends: tuple[int, ...] = SLICE_ENDS
) -> Vgg19:
    """VGG-19 tapped after `ends`, with the weights of `path` (a torchvision state dict;
    layers past the last tap and classifier.* are ignored)."""
    state = _read_state(path)
    wanted = expected_shapes(ends[-1])
    features: dict[str, torch.Tensor] = {}
    for key, shape in wanted.items():
        value = state.get(key)
        if not isinstance(value, torch.Tensor) or tuple(value.shape) != shape:
            found = "missing" if value is None else f"{list(getattr(value, 'shape', []))}"
            raise CorruptError(
                f"{path} is not VGG-19's weights ({key}: {found}, VGG-19 has {list(shape)})",
                f"use torchvision's ImageNet {WEIGHTS_FILE}",
            )
        if not value.is_floating_point() or not torch.isfinite(value).all():
            raise CorruptError(
                f"{path} is damaged ({key} is not finite floating point)",
                f"use a good copy of {WEIGHTS_FILE}",
            )
        features[key.removeprefix("features.")] = value.float()
    vgg = Vgg19(ends)
    vgg.features.load_state_dict(features)
    return vgg.to(device)

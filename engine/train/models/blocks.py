"""Building blocks shared by every swap model."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

# Output maps at most this many pixels run as one matmul on CPU (see Conv2d).
_SMALL_MAP = 16


class Conv2d(nn.Conv2d):
    """nn.Conv2d that runs convs with tiny output maps as unfold + one matmul on CPU.

    oneDNN's direct conv kernels reach under half the matmul rate when the
    output map is 4x4 (the bottleneck convs of the classic and hd encoders,
    a third of the `original` model's FLOPs); as a single (N*H*W, C*k*k) x
    (C*k*k, O) matmul the same conv runs about 1.5x faster, forward and back.
    Same parameters, same result, so checkpoints do not care which path ran.
    """

    def forward(self, x: Tensor) -> Tensor:
        if x.device.type != "cpu" or self.groups != 1 or self.padding_mode != "zeros":
            return super().forward(x)
        n, _, h, w = x.shape
        (kh, kw), (sh, sw), (ph, pw), (dh, dw) = (
            self.kernel_size,
            self.stride,
            self.padding,
            self.dilation,
        )
        oh = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1
        ow = (w + 2 * pw - dw * (kw - 1) - 1) // sw + 1
        if oh * ow > _SMALL_MAP:
            return super().forward(x)
        cols = F.unfold(x, (kh, kw), dilation=(dh, dw), padding=(ph, pw), stride=(sh, sw))
        cols = cols.transpose(1, 2).reshape(n * oh * ow, -1)
        weight = self.weight.reshape(self.out_channels, -1).t()
        y = cols @ weight if self.bias is None else torch.addmm(self.bias, cols, weight)
        return y.view(n, oh * ow, -1).transpose(1, 2).reshape(n, -1, oh, ow)


def he_init(conv: nn.Conv2d | nn.Linear, slope: float) -> nn.Module:
    """He init for a layer followed by LeakyReLU(slope).

    PyTorch's default init shrinks the signal about threefold per layer, so a
    deep sigmoid-headed net starts out flat grey and learns slowly for its
    first hundreds of steps.
    """
    nn.init.kaiming_uniform_(conv.weight, a=slope, nonlinearity="leaky_relu")
    if conv.bias is not None:
        nn.init.zeros_(conv.bias)
    return conv


def icnr_init(conv: nn.Conv2d, slope: float, scale: int = 2) -> nn.Conv2d:
    """ICNR: the scale**2 sub-pixel filters start identical, so pixel shuffle
    begins as nearest-neighbour upsampling, free of checkerboard artefacts."""
    out_ch = conv.out_channels // scale**2
    sub = torch.empty(out_ch, conv.in_channels, *conv.kernel_size)
    nn.init.kaiming_uniform_(sub, a=slope, nonlinearity="leaky_relu")
    with torch.no_grad():
        # PixelShuffle reads channel c*scale**2 + k as sub-pixel k of output channel c.
        conv.weight.copy_(sub.repeat_interleave(scale**2, dim=0))
        if conv.bias is not None:
            conv.bias.zero_()
    return conv


def conv_down(in_ch: int, out_ch: int, kernel: int = 5) -> nn.Sequential:
    """Halve the spatial size: strided conv, LeakyReLU(0.1)."""
    return nn.Sequential(
        he_init(Conv2d(in_ch, out_ch, kernel, stride=2, padding=kernel // 2), 0.1),
        # In place: saves one activation-sized write per block; autograd allows it here.
        nn.LeakyReLU(0.1, inplace=True),
    )


def upscale(in_ch: int, out_ch: int) -> nn.Sequential:
    """Double the spatial size: 3x3 conv to 4x channels, LeakyReLU(0.1), pixel shuffle."""
    return nn.Sequential(
        icnr_init(Conv2d(in_ch, out_ch * 4, 3, padding=1), 0.1),
        nn.LeakyReLU(0.1, inplace=True),
        nn.PixelShuffle(2),
    )


class ResBlock(nn.Module):
    """Two 3x3 convs with a skip connection; keeps shape."""

    def __init__(self, ch: int) -> None:
        super().__init__()
        self.conv1 = he_init(nn.Conv2d(ch, ch, 3, padding=1), 0.2)
        self.conv2 = he_init(nn.Conv2d(ch, ch, 3, padding=1), 0.2)
        with torch.no_grad():
            # Start close to identity: full-size residuals double the signal per block,
            # which saturates the sigmoid heads of deep decoders at the first steps.
            self.conv2.weight.mul_(0.1)
        self.act = nn.LeakyReLU(0.2, inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        y = self.conv2(self.act(self.conv1(x)))
        return self.act(x + y)


class DenseCode(nn.Module):
    """Flatten, squeeze through a dense bottleneck, and reshape back to a small map.

    The bottleneck is what forces the encoder to keep identity-free structure
    (pose, expression, light) that both decoders can redraw.
    """

    def __init__(self, in_ch: int, in_res: int, bottleneck: int, out_ch: int, out_res: int):
        super().__init__()
        self.out_shape = (out_ch, out_res, out_res)
        self.squeeze = nn.Linear(in_ch * in_res * in_res, bottleneck)
        self.expand = nn.Linear(bottleneck, out_ch * out_res * out_res)
        for layer in (self.squeeze, self.expand):
            # No activation between them: fan-in scaling keeps the signal's size through both.
            nn.init.kaiming_uniform_(layer.weight, nonlinearity="linear")
            nn.init.zeros_(layer.bias)

    def forward(self, x: Tensor) -> Tensor:
        # reshape, not view: a channels_last input cannot be viewed flat.
        code = self.expand(self.squeeze(x.reshape(x.shape[0], -1)))
        return code.view(x.shape[0], *self.out_shape)


class Heads(nn.Module):
    """The RGB face (sigmoid) and, optionally, a 1-channel mask (sigmoid).

    One conv draws both: convs with 1-3 output channels run far below peak on
    CPU, so a single 4-channel conv is cheaper than two.
    """

    def __init__(self, in_ch: int, kernel: int, learn_mask: bool) -> None:
        super().__init__()
        self.learn_mask = learn_mask
        self.conv = nn.Conv2d(in_ch, 4 if learn_mask else 3, kernel, padding=kernel // 2)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor | None]:
        out = self.conv(x).sigmoid()
        if not self.learn_mask:
            return out, None
        return out[:, :3], out[:, 3:]


class SubPixelHeads(nn.Module):
    """Like Heads, but drawn at half size as 4 sub-pixels each and pixel-shuffled up."""

    def __init__(self, in_ch: int, learn_mask: bool) -> None:
        super().__init__()
        self.learn_mask = learn_mask
        out_ch = 4 if learn_mask else 3
        self.conv = nn.Conv2d(in_ch, out_ch * 4, 3, padding=1)
        self.shuffle = nn.PixelShuffle(2)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor | None]:
        out = self.shuffle(self.conv(x)).sigmoid()
        if not self.learn_mask:
            return out, None
        return out[:, :3], out[:, 3:]

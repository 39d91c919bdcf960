"""The shared-encoder, two-decoder autoencoder (faceswap's and DeepFaceLab's approach).

One encoder learns what faces A and B share (pose, expression, light); one decoder
per person draws it back as that person. Swapping runs A's face through B's decoder.
This module only declares the family (no torch); `family.py` trains it.
"""

from __future__ import annotations

from engine.train.registry import FamilyInfo, Option, Preset


def _sizes(low: int, high: int, step: int) -> tuple[int, ...]:
    return tuple(range(low, high + 1, step))


FAMILY = FamilyInfo(
    name="autoencoder",
    help="shared encoder, one decoder per person; swaps A's face for B's in footage",
    implementation="engine.train.families.autoencoder.family:AutoencoderFamily",
    facesets=("faceset_a", "faceset_b"),
    converts=True,
    presets=(
        Preset(
            "tiny",
            "small and quick (64 px by default, 32-128); learns masks; for trying things out",
            values={
                "size": 64,
                "enc_dims": 32,
                "dec_dims": 32,
                "bottleneck": 128,
                "learn_mask": True,
                "batch_size": 16,
                "lr": 3e-4,
            },
            allowed={"size": _sizes(32, 128, 16), "layout": ("df",)},
        ),
        # faceswap's "original": 128..1024 encoder filters, 1024 dense, 512..64 decoder filters.
        Preset(
            "original",
            "faceswap's original model, 64 px: the reference for speed and quality",
            values={
                "size": 64,
                "enc_dims": 128,
                "dec_dims": 64,
                "bottleneck": 1024,
                "learn_mask": False,
                "batch_size": 16,
                "lr": 5e-5,
            },
            allowed={"size": (64,), "layout": ("df",)},
        ),
        # Multiples of 32 keep the S/16 dense map whole with room for a further halving.
        Preset(
            "hd",
            "128-256 px with residual blocks and a learned mask; df or liae layout",
            values={
                "size": 128,
                "enc_dims": 64,
                "dec_dims": 64,
                "bottleneck": 256,
                "learn_mask": True,
                "batch_size": 8,
                "lr": 5e-5,
            },
            allowed={"size": _sizes(128, 256, 32), "layout": ("df", "liae")},
            choose=("size", "layout"),
        ),
    ),
    options=(
        Option("faceset_a", "faceset", None, "faceset of person A (the footage)", flag=True),
        Option("faceset_b", "faceset", None, "faceset of person B (the new face)", flag=True),
        Option("size", "int", 64, "model input size in px (hd: 128-256)", flag=True),
        Option(
            "layout",
            "str",
            "df",
            "hd layout: df (one decoder each) or liae",
            choices=("df", "liae"),
            flag=True,
        ),
        Option("enc_dims", "int", 32, "encoder width (filters of its first layer)", ge=4, le=1024),
        Option("dec_dims", "int", 32, "decoder width (filters of its last layer)", ge=4, le=1024),
        Option("bottleneck", "int", 128, "width of the shared code", ge=8, le=8192),
        Option("learn_mask", "bool", True, "decoders also draw the face's mask"),
        Option("batch_size", "int", 16, "faces per person per step", ge=1, le=1024, flag=True),
        Option("lr", "float", 5e-5, "learning rate (Adam)", gt=0, le=1.0, flag=True),
        Option("loss", "str", "l1", "pixel loss beside SSIM", choices=("l1", "mse"), flag=True),
        Option("eye_mouth_weight", "float", 2.0, "extra weight of eyes and mouth", ge=0, le=100),
        Option(
            "occlusion_model",
            "str",
            "",
            "an occlusion model whose masks drop covered pixels from the loss (masked training)",
            frozen=False,
        ),
    ),
)

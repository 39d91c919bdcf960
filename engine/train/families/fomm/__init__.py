"""The First Order Motion Model (Siarohin et al., NeurIPS 2019): a portrait moved by a video.

Self-supervised keypoints with local affine Jacobians say how each part of a face
moves between two frames; a dense motion network blends those local motions and
predicts which parts the source cannot show (occlusion); a generator warps the
source's features and inpaints what was hidden. Trained on pairs of frames of the
same clip. This module only declares the family (no torch); `family.py` trains it,
`networks.py` holds the networks, laid out so the authors' checkpoints load.
"""

from __future__ import annotations

from engine.train.registry import FamilyInfo, Option, Preset

# The published vox-256 configuration (config/vox-256.yaml of the authors' code).
_VOX = {
    "size": 256,
    "num_kp": 10,
    "kp_block_expansion": 32,
    "kp_max_features": 1024,
    "kp_num_blocks": 5,
    "dm_block_expansion": 64,
    "dm_max_features": 1024,
    "dm_num_blocks": 5,
    "scale_factor": 0.25,
    "gen_block_expansion": 64,
    "gen_max_features": 512,
    "num_down_blocks": 2,
    "num_bottleneck_blocks": 6,
    "occlusion": True,
    "batch_size": 8,
    "lr": 2e-4,
}

FAMILY = FamilyInfo(
    name="fomm",
    help="First Order Motion Model: moves a portrait the way a driving video moves (reenact)",
    implementation="engine.train.families.fomm.family:FommFamily",
    facesets=(),
    converts=False,
    loss_names=("perceptual", "equivariance_value", "equivariance_jacobian"),
    presets=(
        Preset(
            "vox-256",
            "the authors' vox-256 network (256 px, 10 keypoints): their checkpoints import into it",
            values=_VOX,
            allowed={"size": (256,)},
        ),
        Preset(
            "fomm-small",
            "a small FOMM (64-128 px, narrow networks) that trains on two CPU cores in minutes",
            values={
                **_VOX,
                "size": 64,
                "kp_block_expansion": 16,
                "kp_max_features": 128,
                "kp_num_blocks": 3,
                "dm_block_expansion": 16,
                "dm_max_features": 128,
                "dm_num_blocks": 3,
                "scale_factor": 0.5,
                "gen_block_expansion": 16,
                "gen_max_features": 128,
                "num_down_blocks": 2,
                "num_bottleneck_blocks": 2,
                "batch_size": 4,
            },
            allowed={"size": (64, 96, 128)},
            choose=("size",),
        ),
    ),
    options=(
        Option(
            "videos",
            "str",
            "",
            "training videos: a video file or a folder of them (frames of one clip are paired)",
            flag=True,
            frozen=False,
        ),
        Option(
            "vgg_weights",
            "str",
            "",
            "VGG-19 ImageNet weights (torchvision's vgg19-dcbb9e9d.pth); empty: torch hub cache",
            flag=True,
            frozen=False,
        ),
        Option("size", "int", 256, "frame size in px the networks work at", flag=True),
        Option("num_kp", "int", 10, "keypoints (each with a 2x2 Jacobian)", ge=1, le=64),
        Option("kp_block_expansion", "int", 32, "keypoint hourglass width", ge=4, le=1024),
        Option("kp_max_features", "int", 1024, "keypoint hourglass widest layer", ge=8, le=4096),
        Option("kp_num_blocks", "int", 5, "keypoint hourglass depth", ge=1, le=8),
        Option("dm_block_expansion", "int", 64, "dense motion hourglass width", ge=4, le=1024),
        Option("dm_max_features", "int", 1024, "dense motion widest layer", ge=8, le=4096),
        Option("dm_num_blocks", "int", 5, "dense motion hourglass depth", ge=1, le=8),
        Option(
            "scale_factor",
            "float",
            0.25,
            "keypoints and dense motion see the frame at this scale",
            gt=0,
            le=1,
        ),
        Option("gen_block_expansion", "int", 64, "generator width", ge=4, le=1024),
        Option("gen_max_features", "int", 512, "generator widest layer", ge=8, le=4096),
        Option("num_down_blocks", "int", 2, "generator down (and up) blocks", ge=1, le=5),
        Option("num_bottleneck_blocks", "int", 6, "generator residual blocks", ge=0, le=32),
        Option("occlusion", "bool", True, "predict an occlusion map and inpaint behind it"),
        Option("batch_size", "int", 8, "frame pairs per step", ge=1, le=1024, flag=True),
        Option("lr", "float", 2e-4, "learning rate (Adam), all networks", gt=0, le=1.0, flag=True),
        Option("perceptual_weight", "float", 10.0, "weight of each VGG-19 pyramid level", ge=0),
        Option("equivariance_weight", "float", 10.0, "weight of both equivariance losses", ge=0),
    ),
)

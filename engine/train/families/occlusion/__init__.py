"""Occlusion masks: a small segmentation network that tells, in an aligned face, which
pixels are the face itself and which are something in front of it (a hand, a
microphone, glasses, a strand of hair).

It learns without hand-drawn labels: occluders are drawn over the facesets' own faces
(hand and microphone shapes, textures and crops of real skin and objects from the
pixels around the faces), and the target is the landmark hull minus the occluder.
Where a faceset holds imported label masks, those are the targets for their faces.
A generic model trained on every faceset of a workspace is fine-tuned per faceset
with `start_from`. Convert uses it with `--mask occlusion`; the autoencoder's
`occlusion_model` option drops occluded pixels from its reconstruction loss.

This module only declares the family (no torch); `family.py` trains it.
"""

from __future__ import annotations

from engine.train.registry import FamilyInfo, Option, Preset

FAMILY = FamilyInfo(
    name="occlusion",
    help="a face mask that learns what covers the face (hands, microphones, glasses) from "
    "occluders drawn over the facesets' faces; for convert --mask occlusion and masked training",
    implementation="engine.train.families.occlusion.family:OcclusionFamily",
    facesets=(),
    converts=False,
    both_ways=False,
    loss_names=("mask",),
    presets=(
        Preset(
            "occlusion",
            "128 px U-Net mask (2.0 M weights)",
            values={"size": 128, "width": 16, "batch_size": 16},
            allowed={"size": (64, 96, 128, 160, 192, 224, 256)},
        ),
        Preset(
            "occlusion-small",
            "64 px, narrow (0.5 M weights): trains on a CPU in minutes",
            values={"size": 64, "width": 8, "batch_size": 16},
            allowed={"size": (32, 48, 64, 80, 96, 112, 128)},
        ),
    ),
    options=(
        Option(
            "inputs",
            "facesets",
            (),
            "facesets whose faces it learns from (empty: every faceset of the workspace)",
            flag=True,
            frozen=False,
        ),
        Option(
            "start_from",
            "str",
            "",
            "an occlusion model whose weights it starts from (fine-tuning); empty: none",
            frozen=False,
        ),
        Option("size", "int", 128, "mask network input size in px", flag=True),
        Option("width", "int", 16, "filters of the first level (doubling per level)", ge=4, le=256),
        Option("batch_size", "int", 16, "faces per step", ge=1, le=1024, flag=True),
        Option("lr", "float", 1e-3, "learning rate (Adam)", gt=0, le=1.0, flag=True),
        Option(
            "occluded_share",
            "float",
            0.8,
            "share of training faces that get a synthetic occluder",
            ge=0.0,
            le=1.0,
        ),
    ),
)

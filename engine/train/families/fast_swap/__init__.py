"""Fast Face-swap (Korshunova, Shi, Dambre, Theis; ICCV 2017): one feed-forward network per
target person, trained as style transfer.

Any input face keeps its pose, expression and lighting (the content) and takes on
B's identity (the style, learnt from B's photos). No footage of A is needed: the
inputs are the faces of every other faceset of the workspace, and converting is
one forward pass. Losses: VGG-19 content, a patch-based style loss against the B
photos whose head pose is nearest the input's, a light loss in the feature space
of a small lighting network, and total variation. (deepfakes/faceswap, often
linked to this paper, is the shared-encoder autoencoder, not this network.)

This module only declares the family (no torch); `family.py` trains it.
"""

from __future__ import annotations

from engine.train.registry import FamilyInfo, Option, Preset

FAMILY = FamilyInfo(
    name="fast-swap",
    help="one feed-forward network per target person B, trained with perceptual losses "
    "on faces of anyone else; converts any face into B",
    implementation="engine.train.families.fast_swap.family:FastSwapFamily",
    facesets=("faceset_b",),
    converts=True,
    both_ways=False,
    loss_names=("content", "style", "light", "tv"),
    presets=(
        # The paper's network: five branches at 8, 16, 32, 64 and 128 px.
        Preset(
            "fast-swap",
            "the paper's multi-scale network at 128 px (GPU work: a VGG-19 loss per step)",
            values={"size": 128, "scales": 5, "width": 32, "batch_size": 8},
            allowed={"size": (128,)},
        ),
        Preset(
            "fast-swap-256",
            "the paper's 256 px network: six branches, 8 to 256 px",
            values={"size": 256, "scales": 6, "width": 32, "batch_size": 4},
            allowed={"size": (256,)},
        ),
        Preset(
            "fast-swap-small",
            "64 px, narrow, four branches: for trying it out on a CPU in minutes",
            values={"size": 64, "scales": 4, "width": 16, "batch_size": 8, "n_best": 8},
            allowed={"size": (64,)},
        ),
    ),
    options=(
        Option("faceset_b", "faceset", None, "faceset of person B (the new face)", flag=True),
        Option(
            "faceset_a",
            "faceset",
            None,
            "faceset of person A, whose footage you will convert (optional; joins the inputs)",
            flag=True,
            optional=True,
        ),
        Option(
            "inputs",
            "facesets",
            (),
            "facesets whose faces are the training inputs; empty: every faceset but B's",
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
        Option("size", "int", 128, "face size in px the network works at", flag=True),
        Option("scales", "int", 5, "branches, each at half the resolution of the next", ge=2, le=7),
        Option("width", "int", 32, "filters of each branch's blocks", ge=4, le=512),
        Option("batch_size", "int", 8, "input faces per step", ge=1, le=1024, flag=True),
        Option("lr", "float", 1e-3, "learning rate (Adam)", gt=0, le=1.0, flag=True),
        Option("n_best", "int", 16, "B photos nearest the input's head pose the style uses", ge=1),
        Option(
            "style_photos",
            "int",
            400,
            "B photos kept for the style loss (spread over head poses; their VGG features stay "
            "in memory)",
            ge=1,
            le=100000,
        ),
        Option("content_weight", "float", 1.0, "weight of the content loss (VGG relu4_2)", ge=0),
        Option("style_weight", "float", 1.0, "weight of the patch style loss", ge=0),
        Option("light_weight", "float", 0.5, "weight of the light loss", ge=0),
        Option("tv_weight", "float", 0.1, "weight of total variation", ge=0),
        Option(
            "light_steps",
            "int",
            300,
            "steps the lighting network trains (on synthetically relit faces) before step 1",
            ge=1,
            le=100000,
        ),
    ),
)

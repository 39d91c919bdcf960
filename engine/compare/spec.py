"""What `swapdeck compare` is asked for: model SPECs and one training budget for all.

A SPEC names a preset (`original`, `hd`) or a family (its first preset), then
`:`-separated choices: a value exactly one of the preset's options takes
(`hd:liae`), or KEY=VALUE (`hd:size=160`). `model:NAME` is an existing model of
the workspace, compared as it is. Everything is read from the family registry, so
families that land later are compared without changes here. No torch.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

from engine.errors import BadInputError
from engine.train.registry import FamilyInfo, Preset, families, presets
from engine.workspace import check_name

_HINT = "a SPEC is a preset or family (e.g. original, hd:liae, hd:size=160) or model:NAME"


@dataclass(frozen=True)
class ModelSpec:
    """One model to compare, as the user wrote it and as the registry reads it."""

    text: str
    slug: str  # part of the compare's model name and of its file names: "hd-liae"
    family: str
    preset: str | None = None  # None for an existing model
    options: dict[str, str] = field(default_factory=dict)  # as written; store coerces them
    existing: str | None = None  # `model:NAME`

    def requested(self, info: FamilyInfo, faceset_a: str, faceset_b: str, seed: int) -> dict:
        """What `train` is given to create this model: preset, options, facesets, seed."""
        return {
            "preset": self.preset,
            **self.options,
            **faceset_options(info, faceset_a, faceset_b),
            "seed": seed,
        }


def faceset_options(info: FamilyInfo, faceset_a: str, faceset_b: str) -> dict[str, str]:
    """The family's faceset options filled from compare's A and B: `*_a` gets A, `*_b`
    gets B, others take A then B in the order the family declares them. An optional
    faceset option ending `_a` or `_b` (fast-swap's faceset_a) is filled too: every
    model of a compare then knows who A and B are, and is scored against both."""
    out: dict[str, str] = {}
    spare = [faceset_a, faceset_b]
    optional = [o.name for o in info.options if o.kind == "faceset" and o.optional]
    for name in (*info.facesets, *optional):
        if name.endswith("_a"):
            out[name] = faceset_a
        elif name.endswith("_b"):
            out[name] = faceset_b
    for name in info.facesets:
        if name not in out and spare:
            out[name] = spare.pop(0)
    return out


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9.]+", "-", text.lower()).strip("-.") or "model"


def _find(head: str) -> tuple[FamilyInfo, Preset]:
    for info, preset in presets():
        if preset.name == head:
            return info, preset
    for info in families():
        if head in (info.name, info.name.replace("_", "-")):
            return info, info.presets[0]
    names = ", ".join(p.name for _, p in presets())
    kinds = ", ".join(info.name for info in families())
    raise BadInputError(
        f"unknown model {head!r} in --models: no preset or family has that name",
        f"presets: {names}; families: {kinds}; or model:NAME for an existing model",
    )


def _choice(info: FamilyInfo, preset: Preset, value: str, spec: str) -> str:
    """The one option of `preset` that takes `value` (`hd:liae` -> layout)."""
    takers = [name for name, allowed in preset.allowed.items() if value in map(str, allowed)]
    takers += [o.name for o in info.options if o.choices and value in map(str, o.choices)]
    takers = list(dict.fromkeys(takers))
    if len(takers) == 1:
        return takers[0]
    if not takers:
        raise BadInputError(
            f"model {spec!r}: no option of {preset.name} takes {value!r}",
            f"write KEY=VALUE (see 'swapdeck train --help'); {_HINT}",
        )
    raise BadInputError(
        f"model {spec!r}: {value!r} could be {' or '.join(takers)}",
        f"write it as KEY=VALUE, e.g. {preset.name}:{takers[0]}={value}",
    )


def parse_spec(text: str) -> ModelSpec:
    """One SPEC, checked against the registry (its values are checked when the model is
    set up, with the facesets: see engine.compare.run)."""
    text = text.strip()
    head, *rest = text.split(":")
    if head == "model":
        name = ":".join(rest)
        check_name(name, "model name in --models")
        return ModelSpec(text=text, slug=_slug(name), family="", existing=name)
    if not head:
        raise BadInputError(f"model {text!r} in --models has no name", _HINT)
    info, preset = _find(head)
    options: dict[str, str] = {}
    for part in rest:
        key, eq, value = part.partition("=")
        if eq:
            key = key.strip().replace("-", "_")
        else:
            key, value = _choice(info, preset, part.strip(), text), part.strip()
        if not key or not value:
            raise BadInputError(f"model {text!r}: empty choice in {part!r}", _HINT)
        if key in options:
            raise BadInputError(f"model {text!r} sets {key} twice", _HINT)
        options[key] = value.strip()
    return ModelSpec(
        text=text, slug=_slug(text), family=info.name, preset=preset.name, options=options
    )


def parse_specs(texts: Iterable[str]) -> list[ModelSpec]:
    """Every SPEC of --models (each argument may hold several, comma-separated)."""
    specs = [parse_spec(part) for chunk in texts for part in chunk.split(",") if part.strip()]
    if not specs:
        raise BadInputError("--models names no model", _HINT)
    seen: dict[str, str] = {}
    for spec in specs:
        if spec.slug in seen:
            raise BadInputError(
                f"--models names the same model twice ({seen[spec.slug]!r} and {spec.text!r})",
                "give each model once",
            )
        seen[spec.slug] = spec.text
    return specs


# ---- the budget --------------------------------------------------------------------------

_TIME = re.compile(r"^(\d+(?:\.\d+)?)\s*(s|sec|m|min|h)$")
_EXAMPLES = re.compile(r"^(\d+(?:\.\d+)?)\s*(k)?\s*(ex|examples)?$", re.IGNORECASE)
_SECONDS = {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600}


@dataclass(frozen=True)
class Budget:
    """Each new model trains for the same wall-clock time, or sees the same examples."""

    kind: Literal["seconds", "examples"]
    amount: float
    text: str

    def describe(self) -> str:
        if self.kind == "seconds":
            if self.amount >= 60:
                return f"{self.amount / 60:g} min of training each"
            return f"{self.amount:g} s of training each"
        return f"{int(self.amount):,} training examples each"

    def steps(self, examples_per_step: int) -> int:
        """Steps that see the budget's examples (the last step may see a few more)."""
        return max(1, math.ceil(self.amount / examples_per_step))


def parse_budget(text: str) -> Budget:
    """`20m`, `90s`, `1.5h` (wall-clock training time) or `200k`, `5000` (examples seen)."""
    value = text.strip()
    if match := _TIME.match(value):
        seconds = float(match.group(1)) * _SECONDS[match.group(2)]
        if seconds >= 1:
            return Budget("seconds", seconds, value)
    elif match := _EXAMPLES.match(value):
        examples = float(match.group(1)) * (1000 if match.group(2) else 1)
        if examples >= 1:
            return Budget("examples", math.floor(examples), value)
    hint = "e.g. 20m, 90s or 1.5h of training, or 200k or 5000 examples"
    if value.endswith("M"):
        hint = "20m is 20 minutes; write a million examples as 1000k"
    raise BadInputError(f"cannot read the budget {text!r}", hint)


def model_name(compare: str, spec: ModelSpec) -> str:
    """The workspace model a compare trains for `spec` (an existing model keeps its name)."""
    if spec.existing:
        return spec.existing
    return check_name(f"{compare}-{spec.slug}"[:64].rstrip("-."), "model name")

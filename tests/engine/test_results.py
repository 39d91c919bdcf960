"""Typed results read back from their own JSON, and what they leave out of it."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from engine.events import Finished, to_json
from engine.results import ConvertResult, TrainResult

TRAIN = {
    "model": "m",
    "steps": 3,
    "loss_a": 0.5,
    "loss_b": 0.25,
    "examples_per_s": 12.0,
    "examples_per_s_steady": 12.5,
    "checkpoint": "c",
    "preview": "p",
    "stopped": False,
    "seconds": 1.0,
}


def test_a_train_result_round_trips_through_its_event_json() -> None:
    result = TrainResult(**TRAIN)
    line = to_json(Finished(stage="train", result=result.model_dump(mode="json")))
    again = TrainResult.model_validate(json.loads(line)["result"])
    assert again == result
    assert list(json.loads(line)["result"]) == list(TRAIN)  # the keys, in today's order
    assert again.losses == {"a": 0.5, "b": 0.25}


def test_another_familys_losses_ride_as_loss_keys_and_nothing_else_does() -> None:
    other = {k: v for k, v in TRAIN.items() if k not in ("loss_a", "loss_b")}
    result = TrainResult(**other, loss_recon=0.1)
    dumped = result.model_dump(mode="json", exclude_unset=True)
    assert "loss_a" not in dumped and dumped["loss_recon"] == 0.1
    assert result.losses == {"recon": 0.1}
    with pytest.raises(ValidationError):
        TrainResult(**TRAIN, surprise=1)


def test_a_convert_of_images_leaves_audio_out_of_its_json() -> None:
    values = {
        "frames": 2,
        "faces_swapped": 2,
        "faces_not_chosen": 0,
        "frames_without_face": 0,
        "undecodable_frames": 0,
        "output": "out",
        "seconds": 1.0,
        "frames_per_s": 2.0,
    }
    assert "audio_streams" not in ConvertResult(**values).model_dump(mode="json")
    with_audio = ConvertResult(**values, audio_streams=1).model_dump(mode="json")
    assert with_audio["audio_streams"] == 1

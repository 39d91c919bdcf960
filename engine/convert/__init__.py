"""The convert stage: put B's face onto A in video or images, marked as synthetic."""

from engine.convert.run import convert

__all__ = ["convert"]

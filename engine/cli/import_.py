"""`swapdeck import`: published checkpoints written as swapdeck models."""

from __future__ import annotations

import typer

app = typer.Typer(help="Write a published checkpoint as a swapdeck model.", no_args_is_help=True)

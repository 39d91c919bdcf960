"""`python -m engine.train ARGS` = `swapdeck train ARGS`; what torchrun launches."""

from __future__ import annotations

import sys

from engine.cli import app

if __name__ == "__main__":
    app(["train", *sys.argv[1:]], prog_name="swapdeck train")

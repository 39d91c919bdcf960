"""`python -m engine.train ARGS` = `swapdeck train ARGS`; what torchrun launches.

The worker leaves with os._exit once the command is done (checkpoint saved, ranks
met at the barrier and the process group destroyed): skipping the interpreter's
teardown, where gloo's threads were seen to abort a finished rank under load
("terminate called without an active exception", torchrun then failing the run).
"""

from __future__ import annotations

import os
import sys

from engine.cli import app


def main() -> int:
    try:
        app(["train", *sys.argv[1:]], prog_name="swapdeck train")
    except SystemExit as exc:
        if exc.code is None or isinstance(exc.code, int):
            return exc.code or 0
        print(exc.code, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)

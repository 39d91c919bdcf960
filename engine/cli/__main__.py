"""`python -m engine.cli ARGS` = `swapdeck ARGS` (how detached jobs start themselves)."""

from engine.cli import main

main()

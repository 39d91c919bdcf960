"""`python -m tui ARGS` = `swapdeck ARGS`, the wizard included."""

from tui.cli import main

main()

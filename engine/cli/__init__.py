"""The `swapdeck` command: one thin module per command over the engine.

`swapdeck wizard` is added by tui.cli (the installed script's entry point), so
that nothing here imports the front end.
"""

from __future__ import annotations

import typer

from engine.cli import (
    compare,
    convert,
    demo,
    doctor,
    extract,
    faceset,
    import_,
    jobs,
    reenact,
    score,
    train,
    verify,
)

app = typer.Typer(
    name="swapdeck",
    help="Face swapping on remote GPU boxes: extract, train, convert.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command("extract")(extract.extract_command)
app.add_typer(faceset.app, name="faceset")
app.command("train", epilog=train.epilog())(train.train_command)
app.add_typer(jobs.app, name="jobs")
app.command("convert")(convert.convert_command)
app.command("score")(score.score_command)
app.command("compare", epilog=compare.EPILOG)(compare.compare_command)
app.command("reenact")(reenact.reenact_command)
app.add_typer(import_.app, name="import")
app.command("verify")(verify.verify_command)
app.command("doctor")(doctor.doctor_command)
app.command("demo")(demo.demo_command)


def main() -> None:
    app()

"""`convcalc schema`: the JSON Schema of the spec format (convcalc.schema)."""

from __future__ import annotations

import typer

from convcalc.cli import app


@app.command()
def schema() -> None:
    """Print the JSON Schema (draft 2020-12) of the spec format, generated from the layer
    kinds: for editors (yaml-language-server) and validators."""
    from convcalc.schema import render_schema
    typer.echo(render_schema(), nl=False)

"""The command line: a typer app whose commands are thin; the only place that prints or exits.

Exit status: 0 clean, 1 a finding (an error; a warning under --strict; a failed check),
2 a usage error (unknown option, unreadable file), 3 an internal error (a bug: please report).
"""

from __future__ import annotations

import sys

import typer

app = typer.Typer(
    add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
    help="Convolution arithmetic and shape calculator: shapes, parameters, MACs, memory and "
         "receptive fields of a CNN written as a YAML spec.")


def fail_usage(message: str) -> None:
    """A one-line usage error on stderr, exit 2."""
    typer.echo(f"convcalc: error: {message}", err=True)
    raise typer.Exit(2)


def _show_version(value: bool) -> None:
    if value:
        from convcalc import __version__
        typer.echo(f"convcalc {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(version: bool = typer.Option(False, "--version", is_eager=True, callback=_show_version,
                                       help="Print the version and exit.")) -> None:
    """Convolution arithmetic and shape calculator: shapes, parameters, MACs, memory and
    receptive fields of a CNN written as a YAML spec, and a NumPy executor that proves them."""


def console():
    """A rich console: the terminal's width on a terminal (or $COLUMNS when set); wide enough
    for whole tables when the output goes to a file or a CI log, so that names are never cut."""
    import os

    from rich.console import Console
    out = Console(highlight=False, soft_wrap=True)
    if not out.is_terminal and not os.environ.get("COLUMNS", "").isdigit():
        out = Console(highlight=False, soft_wrap=True, width=240)
    return out


def parse_shape(text: str, what: str = "--input") -> tuple[int, ...]:
    """'3x224x224', '224x224' or '224' -> a tuple of positive ints."""
    try:
        values = tuple(int(v) for v in text.lower().replace(",", "x").split("x"))
    except ValueError:
        values = ()
    if not values or any(v <= 0 for v in values):
        fail_usage(f"{what} {text!r}: expected sizes like 3x224x224 or 224x224")
    return values


def full_input(override: tuple[int, ...] | None, path, text: str | None = None):
    """--input for a spec: 3x256x256 replaces its input; 256x256 (or 256) keeps its channels
    (convcalc.api.resolve_input). A size of another rank than the spec's is a usage error."""
    from convcalc.interop import is_model_file
    if override is None or is_model_file(path):
        return override  # a model file's importer reads --input itself
    from convcalc.api import InputError, resolve_input
    try:
        spec_text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return override  # the analysis reports it
    try:
        return resolve_input(override, spec_text, str(path))
    except InputError as err:
        fail_usage(f"--{err}")


def _register_commands() -> None:
    from convcalc.cli import check  # noqa: F401
    for optional in ("calc", "rf", "run", "imports", "schema", "diff", "export", "picture"):
        try:
            __import__(f"convcalc.cli.{optional}")
        except ModuleNotFoundError as err:
            if err.name != f"convcalc.cli.{optional}":
                raise


class QuietPipe:
    """stdout that, once its reader has gone (`convcalc run ... | head -2`), drops the rest
    quietly, as Unix tools do, so that the exit status stays the command's own."""

    def __init__(self, stream):
        self.stream, self.closed_pipe = stream, False

    def write(self, text: str) -> int:
        if not self.closed_pipe:
            try:
                self.stream.write(text)
            except BrokenPipeError:
                self._drop()
        return len(text)

    def flush(self) -> None:
        if not self.closed_pipe:
            try:
                self.stream.flush()
            except BrokenPipeError:
                self._drop()

    def _drop(self) -> None:
        import os
        self.closed_pipe = True
        try:  # the interpreter's own flush at exit must not fail either
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, self.stream.fileno())
        except (OSError, ValueError):
            pass

    def __getattr__(self, name: str):
        return getattr(self.stream, name)


def main() -> None:
    """Console entry point; turns any unexpected exception into one line, never a traceback."""
    _register_commands()
    import click
    sys.stdout = QuietPipe(sys.stdout)
    if not sys.warnoptions:  # users see convcalc's own one-line messages, never raw warnings
        import warnings
        warnings.simplefilter("ignore")
    try:
        status = app(standalone_mode=False)
    except click.exceptions.NoArgsIsHelpError:  # bare `convcalc`: typer printed the help
        sys.exit(2)
    except click.UsageError as err:  # one line, as every other error (click draws a box)
        where = err.ctx.command_path if err.ctx else "convcalc"
        typer.echo(f"convcalc: error: {err.format_message()} (see {where} --help)", err=True)
        sys.exit(2)
    except click.ClickException as err:
        typer.echo(f"convcalc: error: {err.format_message()}", err=True)
        sys.exit(err.exit_code)
    except click.Abort:
        typer.echo("convcalc: interrupted", err=True)
        sys.exit(130)
    except SystemExit:
        raise
    except KeyboardInterrupt:
        typer.echo("convcalc: interrupted", err=True)
        sys.exit(130)
    except MemoryError as err:  # more than this process may have (ulimit, a raised --max-memory)
        typer.echo(f"convcalc: error: out of memory{': ' + str(err) if str(err) else ''} (hint: "
                   "a smaller input, or a lower --max-memory so that the estimate refuses it "
                   "first)", err=True)
        sys.exit(2)
    except Exception as err:  # noqa: BLE001 - the last line of defence for users
        typer.echo(f"convcalc: internal error: {type(err).__name__}: {err} "
                   f"(please report this with the spec that caused it)", err=True)
        sys.exit(3)
    sys.exit(status if isinstance(status, int) else 0)

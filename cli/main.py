"""The `slmkit` app: every command group registered, and the entry point that turns user errors
into one line and an exit code. Heavy libraries load inside the commands that use them."""

from __future__ import annotations

import os
import signal
import sys

import typer
from rich.console import Console
from rich.markup import escape
from slmkit.cli.confidence import confidence_app
from slmkit.cli.convert import convert, parity
from slmkit.cli.logs import logs_app
from slmkit.cli.models import models_app
from slmkit.cli.package import package, verify
from slmkit.cli.routing import route, router_app
from slmkit.cli.simulate import cost, serve, shadow_app, simulate
from slmkit.runtime.errors import SlmkitError

app = typer.Typer(
    name="slmkit",
    help="Ship small language models to phones and laptops: convert, prove parity, route.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.command("convert")(convert)
app.command("parity")(parity)
app.add_typer(models_app, name="models")
app.add_typer(router_app, name="router")
app.add_typer(confidence_app, name="confidence")
app.add_typer(logs_app, name="logs")
app.add_typer(shadow_app, name="shadow")
app.command("route")(route)
app.command("simulate")(simulate)
app.command("cost")(cost)
app.command("serve")(serve)
app.command("package")(package)
app.command("verify")(verify)
console = Console(stderr=True)


def _terminated(signum: int, frame: object) -> None:
    """SIGTERM (a CI timeout, `kill`): remove staging folders and exit 143 at once.

    Raising KeyboardInterrupt here is not enough: torch.jit and coremltools swallow or re-raise it
    in places that either finish the conversion or kill the process without cleanup.
    """
    from slmkit.converter.staging import abandon_active

    abandon_active()
    sys.stderr.write("interrupted (SIGTERM): nothing was written.\n")
    sys.stderr.flush()
    os._exit(128 + signum)


def main() -> None:
    """Entry point: user errors become one red line and an exit code, never a traceback."""
    signal.signal(signal.SIGTERM, _terminated)
    try:
        code = app(standalone_mode=False)
    except SlmkitError as exc:
        console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)  # paths stay copyable
        sys.exit(1)
    except (KeyboardInterrupt, typer.Abort):
        code = 130
    except Exception as exc:
        if hasattr(exc, "show") and hasattr(exc, "exit_code"):  # click usage errors (typer vendors click)
            exc.show()
            sys.exit(exc.exit_code)
        raise
    if code == 130:  # typer turns Ctrl-C into exit code 130
        console.print("[bold red]interrupted:[/] nothing was written.")
    sys.exit(code if isinstance(code, int) else 0)

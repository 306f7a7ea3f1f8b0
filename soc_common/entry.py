"""The ``soc`` entry point: ``soc hunt`` on its Typer-free fast path, everything else through
:mod:`soc_common.cli`.

Importing Typer (and Click, Rich) costs about 40 ms, a tenth of hunting through a day's worth of
event logs, so a plain ``soc hunt`` command line never loads it; help, errors and every other
command go through the full CLI.
"""

from __future__ import annotations

import sys

OWN_PACKAGES = ("soc_common", "agent", "collector", "soc_api")


def fast_hunt(argv: list[str]) -> int | None:
    """``soc hunt`` without Typer when the command line is a plain one (see
    :mod:`collector.detection.hunt_argv`); None to take the normal path (help, errors, missing extra)."""
    if not argv or argv[0] != "hunt":
        return None
    try:
        from collector.detection.hunt_argv import run_from_argv
    except ImportError as exc:
        if exc.name and exc.name.split(".")[0] in OWN_PACKAGES:
            raise
        return None
    return run_from_argv(argv[1:])


def main() -> None:
    code = fast_hunt(sys.argv[1:])
    if code is not None:
        sys.exit(code)
    from soc_common.cli import main as cli_main

    cli_main()

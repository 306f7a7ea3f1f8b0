"""A fast path for ``soc hunt``'s command line, so a hunt does not pay for the CLI framework.

Typer builds a pydantic validator per parameter and imports pydantic and click: about 0.12 s of CPU
before the first rule loads, a tenth of a hunt over the sample set. This parser reads the plain,
valid command lines (the options of :func:`collector.detection.hunt.hunt_command`, long or short,
``--opt=value``, ``-jN``, ``--``) and gives up (``None``) on anything else: ``--help``, an unknown
or incomplete option, a bad number. The caller then runs the command through Typer, so help,
usage errors and their exit codes stay exactly Typer's.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from collector.detection.hunt_run import HuntOptions, execute

#: option spelling -> (HuntOptions field, kind); kinds: path, paths, str, strs, int, flag.
OPTIONS: dict[str, tuple[str, str]] = {
    "--rules": ("rules", "paths"),
    "-r": ("rules", "paths"),
    "--format": ("fmt", "str"),
    "-f": ("fmt", "str"),
    "--status": ("status", "strs"),
    "--level": ("level", "strs"),
    "--output": ("output", "path"),
    "-o": ("output", "path"),
    "--skipped-report": ("skipped_report", "path"),
    "--fail-on-match": ("fail_on_match", "flag"),
    "--no-cache": ("no_cache", "flag"),
    "--workers": ("workers", "int"),
    "-j": ("workers", "int"),
}


class _GiveUp(Exception):
    """The command line is not one this parser is sure about."""


def _split(arg: str) -> tuple[str, str | None]:
    """``--opt=value`` / ``-xVALUE`` -> (option, attached value); a plain option -> (option, None)."""
    if arg.startswith("--"):
        name, eq, value = arg.partition("=")
        return name, (value if eq else None)
    if len(arg) > 2:
        return arg[:2], arg[2:]
    return arg, None


def _convert(kind: str, raw: str) -> Any:
    if kind in ("path", "paths"):
        return Path(raw)
    if kind == "int":
        if not raw.isascii() or not raw.isdigit():  # negative or not a number: Typer words the error
            raise _GiveUp
        return int(raw)
    return raw


def parse_hunt_argv(argv: Sequence[str]) -> HuntOptions | None:
    """``soc hunt``'s arguments (after ``hunt``) as options, or None to let Typer handle them."""
    values: dict[str, Any] = {}
    inputs: list[Path] = []
    args = list(argv)
    i = 0
    try:
        while i < len(args):
            arg = args[i]
            i += 1
            if arg == "--":
                inputs.extend(Path(a) for a in args[i:])
                break
            if not arg.startswith("-") or arg == "-":
                inputs.append(Path(arg))
                continue
            name, attached = _split(arg)
            spec = OPTIONS.get(name)
            if spec is None:
                raise _GiveUp
            dest, kind = spec
            if kind == "flag":
                if attached is not None:
                    raise _GiveUp
                values[dest] = True
                continue
            if attached is None:
                if i >= len(args):
                    raise _GiveUp
                attached = args[i]
                i += 1
            value = _convert(kind, attached)
            if kind in ("paths", "strs"):
                values.setdefault(dest, []).append(value)
            else:
                values[dest] = value
    except _GiveUp:
        return None
    if not inputs or not values.get("rules"):
        return None
    return HuntOptions(inputs=inputs, **values)


def run_from_argv(argv: Sequence[str]) -> int | None:
    """Run the hunt the arguments describe; None when they need Typer (help, usage errors)."""
    opts = parse_hunt_argv(argv)
    if opts is None:
        return None
    return execute(opts)

"""Help that reads like git's or gh's: a flag shows no value type, an option that takes a value
shows its METAVAR, and a required argument is plain ``TOKEN`` in usage lines (``[TOKEN]`` when
optional).

Typer 0.29 renders Python annotations instead (``--json <bool>``, ``--alg <list[str]>``,
``{TOKEN}``). :func:`install` gives its options and arguments click's conventions back through
the three methods Typer renders help with; ``tests/cli/test_help.py`` renders every command's
help and fails on any of those artefacts, so a Typer upgrade that renames a hook is caught.

>>> install()
>>> from typer.testing import CliRunner
>>> from tessera.cli.main import app
>>> usage = CliRunner().invoke(app, ["token", "verify", "--help"]).output
>>> "<bool>" in usage or "{TOKEN}" in usage
False
"""

from __future__ import annotations

from typing import Any

from typer.core import TyperArgument, TyperOption


def _option_type(self: TyperOption, ctx: Any) -> str | None:
    if self.is_flag or self.count:
        return None  # a flag takes no value: nothing to show after it
    if self.metavar is not None:
        return self.metavar
    described = self.type_descriptor
    if described.is_choice:
        return "[" + "|".join(str(choice) for choice in described.choices or ()) + "]"
    # Named after the option, as git and gh do: --alg ALG, --since SINCE.
    longest = max(self.opts, key=len)
    return longest.lstrip("-").replace("-", "_").upper()


def _argument_type(self: TyperArgument, ctx: Any) -> str | None:
    return None  # the argument's METAVAR already names it in the panel


def _argument_usage(self: TyperArgument, ctx: Any) -> list[str]:
    name = self.display_name_raw.upper()  # TOKEN, [TOKEN], FILE...
    name = name if self.required else f"[{name}]"
    return [name + "..." if self.nargs != 1 else name]


def install() -> None:
    """Render Typer's help with click's conventions (idempotent)."""
    TyperOption.display_type_rich = _option_type  # type: ignore[method-assign]
    TyperArgument.display_type_rich = _argument_type  # type: ignore[method-assign,assignment]
    TyperArgument.get_usage_pieces = _argument_usage  # type: ignore[method-assign]

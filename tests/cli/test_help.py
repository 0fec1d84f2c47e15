"""Every command's help, rendered as a person sees it, reads like git's or gh's: no Python types
(``<bool>``, ``<list[str]>``, ``<path>``), no ``{TOKEN}`` in usage lines, no ``--no-x`` twin of
a plain flag, an upper-case METAVAR after each option that takes a value, and a summary line for
every command and group."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from tessera.cli.main import app

from .conftest import PLAIN_TERMINAL

ARTEFACTS = [
    re.compile(r"<[a-z][\w\[\], ]*>"),  # <bool>, <str>, <list[str]>, <path>, <float range>
    re.compile(r"\{[A-Z_]+\}"),  # {TOKEN} in a usage line
    re.compile(r"\bNoneType\b|\btyping\.|\bOptional\["),
]


def _commands(group: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    yield path, group
    for name, command in getattr(group, "commands", {}).items():
        yield from _commands(command, (*path, name))


COMMANDS = list(_commands(typer.main.get_command(app)))


def _help(path: tuple[str, ...]) -> str:
    result = CliRunner(env={**PLAIN_TERMINAL, "COLUMNS": "200"}).invoke(app, [*path, "--help"])
    assert result.exit_code == 0, result.output
    return result.output


def test_every_command_is_walked() -> None:
    paths = {" ".join(path) for path, _ in COMMANDS}
    assert {"token verify", "keys rotate", "admin user create", "audit tail", "serve"} <= paths
    assert len(paths) > 30


@pytest.mark.parametrize(
    ("path", "command"), COMMANDS, ids=[" ".join(p) or "-" for p, _ in COMMANDS]
)
def test_help_reads_conventionally(path: tuple[str, ...], command: Any) -> None:
    output = _help(path)
    for artefact in ARTEFACTS:
        assert not artefact.search(output), (artefact.pattern, output)
    assert (command.help or command.short_help or "").strip(), f"{path} has no help text"
    for parameter in command.params:
        if parameter.param_type_name != "option":
            continue
        longest = max(parameter.opts, key=len)
        row = re.compile(rf"^│\s+(\*\s+)?{re.escape(longest)}\s")
        line = next(line for line in output.splitlines() if row.search(line))
        # what follows the option in its row, past its short form (-n)
        after = [word for word in line.split(longest, 1)[1].split() if not word.startswith("-")]
        if parameter.is_flag:
            assert not parameter.secondary_opts, f"{longest} has a --no- twin"
            # nothing between the flag and its help text
            assert after[: len(parameter.help.split()[:1])] == parameter.help.split()[:1], line
        else:
            assert after and re.fullmatch(r"[A-Z_]+|\[[\w|-]+\]", after[0]), (longest, line)


def test_what_token_verify_says_of_iss_and_aud_is_true() -> None:
    """The README verifies without --iss: the help must not claim iss is required."""
    output = _help(("token", "verify"))
    assert "iss is required" not in output and "aud is required" not in output
    assert "not given, iss is not checked" in " ".join(output.split())


def test_the_keys_group_says_it_also_rotates_and_lists() -> None:
    summary = " ".join(_help(("keys",)).split())
    assert "rotate and list the provider's signing keys" in summary

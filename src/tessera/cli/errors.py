"""Exit codes, and the one error the command line raises for bad input.

>>> from tessera.cli.errors import EXIT_INPUT, InputError
>>> InputError("bad duration").code, EXIT_INPUT
('invalid_input', 2)
"""

from __future__ import annotations

EXIT_REFUSED = 1
EXIT_INPUT = 2


class InputError(Exception):
    """Bad input to a command (a file, a JSON text, a duration): one line on output, exit 2."""

    code = "invalid_input"

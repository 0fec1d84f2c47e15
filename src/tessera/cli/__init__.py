"""The ``tessera`` command line: keys and tokens, for people and for scripts (``--json``).

Exit codes are part of the interface: 0 success, 1 a token was refused, 2 bad input.

>>> from typer.testing import CliRunner
>>> from tessera.cli.main import app
>>> CliRunner().invoke(app, ["keys", "generate", "--alg", "ES256"]).exit_code
0
"""

"""``tessera keys``: generate a private key, show a key's public half or its thumbprint.

>>> from typer.testing import CliRunner
>>> CliRunner().invoke(app, ["generate", "--alg", "EdDSA", "--json"]).exit_code
0
"""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from tessera import jose

from .errors import InputError
from .files import write_private
from .keyfiles import load_key
from .output import JsonOption, emit_json, emit_text, handled, note
from .params import ALGORITHM_HELP, check_algorithm

app = typer.Typer(
    help="Keys: generate a key file, show its public half or thumbprint; rotate and list the"
    " provider's signing keys."
)


class KeyFormat(StrEnum):
    """How a key is written: a JWK (JSON) or PEM (PKCS#8 private, SPKI public)."""

    jwk = "jwk"
    pem = "pem"


FormatOption = Annotated[KeyFormat, typer.Option("--format", help="Output format.")]
KeyFileArgument = Annotated[
    Path,
    typer.Argument(
        metavar="FILE", help="Key file: JWK or PEM, private or public.", show_default=False
    ),
]


@app.command()
def generate(
    alg: Annotated[
        str, typer.Option("--alg", help=f"Algorithm: {ALGORITHM_HELP}.", show_default=False)
    ],
    kid: Annotated[
        str | None, typer.Option("--kid", help="Key id (default: the RFC 7638 thumbprint).")
    ] = None,
    key_format: FormatOption = KeyFormat.jwk,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out", metavar="FILE", help="Write to this new file (mode 0600) instead of stdout."
        ),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace --out if it exists.")] = False,
    json_output: JsonOption = False,
) -> None:
    """Generate a new private key (an HMAC secret for HS*).

    Example: tessera keys generate --alg ES256 --out signing.jwk
    """
    with handled(json_output):
        algorithm = check_algorithm(alg)
        if key_format is KeyFormat.pem and jose.algorithms.get(algorithm).kty == "oct":
            raise InputError("an HMAC secret has no PEM form; use --format jwk")
        if key_format is KeyFormat.pem and kid is not None:
            raise InputError("PEM has no place for a kid; use --format jwk")
        key = jose.Key.generate(algorithm, kid=kid)
        if out is None:
            if json_output:
                emit_json({**_describe(key, key_format), "key": _private_form(key, key_format)})
            else:
                emit_text(_private_text(key, key_format))
            return
        write_private(out, (_private_text(key, key_format) + "\n").encode(), force=force)
        if json_output:
            emit_json({**_describe(key, key_format), "path": str(out)})
        else:
            named = f", kid {key.kid}" if key.kid is not None else ""
            note(f"wrote a private {key.alg} key to {out} (mode 0600{named})")


@app.command()
def public(
    file: KeyFileArgument,
    key_format: FormatOption = KeyFormat.jwk,
    json_output: JsonOption = False,
) -> None:
    """Print the public key of a key file; never its private part.

    Example: tessera keys public signing.jwk --format pem
    """
    with handled(json_output):
        key = load_key(file).public()
        form: Any = key.to_jwk() if key_format is KeyFormat.jwk else key.to_pem().decode("ascii")
        if json_output:
            emit_json({**_describe(key, key_format), "key": form})
        else:
            emit_text(_as_text(form))


@app.command()
def thumbprint(file: KeyFileArgument, json_output: JsonOption = False) -> None:
    """Print the RFC 7638 (SHA-256) thumbprint of a key file's public key.

    Example: tessera keys thumbprint signing.jwk
    """
    with handled(json_output):
        key = load_key(file)
        if key.kty == "oct":
            # A secret's thumbprint is a hash of the secret: an offline guessing target.
            raise InputError("an HMAC secret has no thumbprint to publish")
        value = key.thumbprint()
        if json_output:
            emit_json({"thumbprint": value, "hash": "sha256", "kty": key.kty, "kid": key.kid})
        else:
            emit_text(value)


def _describe(key: jose.Key, key_format: KeyFormat) -> dict[str, Any]:
    return {"kty": key.kty, "alg": key.alg, "kid": key.kid, "format": key_format.value}


def _private_form(key: jose.Key, key_format: KeyFormat) -> Any:
    if key_format is KeyFormat.jwk:
        return key.to_jwk(private=True)
    return key.to_pem(private=True).decode("ascii")


def _private_text(key: jose.Key, key_format: KeyFormat) -> str:
    return _as_text(_private_form(key, key_format))


def _as_text(form: Any) -> str:
    if isinstance(form, str):
        return form.rstrip("\n")
    return json.dumps(form, indent=2)

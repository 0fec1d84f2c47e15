"""``tessera token``: sign claims, verify a token under a policy, inspect one without verifying.

>>> from typer.testing import CliRunner
>>> CliRunner().invoke(app, ["inspect", "not-a-token"]).exit_code
1
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from tessera import jose

from .errors import EXIT_REFUSED, InputError
from .files import read_token
from .inspection import inspect_document, render
from .keyfiles import load_key, load_keyset
from .output import JsonOption, emit_json, emit_text, fail, handled, note, stdout, to_json
from .params import ALGORITHM_HELP, check_algorithm, parse_claims, parse_duration

app = typer.Typer(help="Sign, verify and inspect tokens (JWT).")

TokenArgument = Annotated[
    str,
    typer.Argument(
        metavar="TOKEN",
        help="The token, or - to read it from stdin (keeps it out of shell history).",
        show_default=False,
    ),
]


@app.command()
def encode(
    key_file: Annotated[
        Path,
        typer.Option(
            "--key",
            metavar="FILE",
            help="Private key file (JWK or PEM) or HMAC key.",
            show_default=False,
        ),
    ],
    claims: Annotated[
        str,
        typer.Option(
            "--claims", metavar="JSON", help="Claims: JSON text, or @FILE.", show_default=False
        ),
    ],
    lifetime: Annotated[
        str | None,
        typer.Option(
            "--exp",
            metavar="DURATION",
            help="Lifetime such as 30s, 15m, 2h, 7d: sets exp (and iat).",
        ),
    ] = None,
    alg: Annotated[
        str | None, typer.Option("--alg", help="Algorithm (default: the key's).")
    ] = None,
    kid: Annotated[
        str | None, typer.Option("--kid", help="kid header (default: the key's).")
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """Sign a claims set into a JWT and print it.

    Example: tessera token encode --key signing.jwk --claims '{"sub": "ada"}' --exp 15m
    """
    with handled(json_output):
        payload = parse_claims(claims)
        seconds = parse_duration(lifetime) if lifetime is not None else None
        key = load_key(key_file)
        algorithm = check_algorithm(alg) if alg is not None else key.default_alg
        if not key.is_private:
            raise InputError(
                f"key file '{key_file}' holds a public key; signing needs a private one"
            )
        if algorithm not in key.algorithms():
            raise InputError(f"the key in '{key_file}' cannot sign with {algorithm}")
        if seconds is not None:
            now = int(time.time())
            payload["exp"] = now + seconds
            payload.setdefault("iat", now)
        headers = {"kid": kid} if kid is not None else None
        token = jose.jwt.encode(payload, key, alg=algorithm, headers=headers)
    if json_output:
        emit_json({"token": token, "alg": algorithm, "claims": payload})
        return
    emit_text(token)
    if "exp" not in payload:
        note("note: the token has no exp; verifiers refuse that by default (use --exp)")


@app.command()
def verify(
    token: TokenArgument,
    algorithms: Annotated[
        list[str],
        typer.Option(
            "--alg", help=f"Allowed algorithm, repeatable: {ALGORITHM_HELP}.", show_default=False
        ),
    ],
    key_file: Annotated[
        Path | None,
        typer.Option("--key", metavar="FILE", help="Verification key file (JWK or PEM)."),
    ] = None,
    jwks_file: Annotated[
        Path | None, typer.Option("--jwks", metavar="FILE", help="JWK Set file.")
    ] = None,
    issuers: Annotated[
        list[str] | None,
        typer.Option(
            "--iss",
            metavar="ISSUER",
            help="Accepted issuer, exact match; repeatable. Given, the token must carry one;"
            " not given, iss is not checked.",
        ),
    ] = None,
    audiences: Annotated[
        list[str] | None,
        typer.Option(
            "--aud",
            metavar="AUDIENCE",
            help="Accepted audience; repeatable. Given, the token's aud must name one; not"
            " given, a token with an aud is refused.",
        ),
    ] = None,
    leeway: Annotated[
        float,
        typer.Option("--leeway", metavar="SECONDS", min=0, help="Clock skew allowed, in seconds."),
    ] = 0,
    json_output: JsonOption = False,
) -> None:
    """Verify a token's signature and claims; print the claims, or why it was refused (exit 1).

    Example: tessera token verify - --key signing.pub.jwk --alg ES256 --iss https://id.example
    """
    with handled(json_output):
        verifier = jose.Verifier(
            _verification_keys(key_file, jwks_file),
            algorithms=[check_algorithm(name) for name in algorithms],
            issuer=issuers or None,
            audience=audiences or None,
            leeway=leeway,
        )
        raw = read_token(token)
        try:
            claims = verifier.verify(raw)
        except jose.InvalidToken as error:
            _refuse(error, json_output)
    if json_output:
        header, _ = jose.jwt.decode_unverified(raw)  # the signature over it was just verified
        emit_json({"valid": True, "header": header, "claims": claims})
        return
    emit_text(to_json(claims))
    note("valid: signature and claims verified")


@app.command("inspect")
def inspect_token(token: TokenArgument, json_output: JsonOption = False) -> None:
    """Decode a token WITHOUT verifying it: header, claims and readable times, for debugging.

    Example: tessera token inspect - < token.txt
    """
    with handled(json_output):
        raw = read_token(token)
        try:
            document = inspect_document(raw, now=time.time())
        except jose.InvalidToken as error:
            fail(
                {"code": error.code, "message": str(error)},
                f"cannot decode the token ({error.code}): {error}",
                exit_code=EXIT_REFUSED,
                json_output=json_output,
            )
    if json_output:
        emit_json(document)
    else:
        render(document, stdout())


def _verification_keys(key_file: Path | None, jwks_file: Path | None) -> jose.Key | jose.KeySet:
    if key_file is not None and jwks_file is None:
        return load_key(key_file)
    if jwks_file is not None and key_file is None:
        return load_keyset(jwks_file)
    raise InputError("give exactly one of --key or --jwks")


def _refuse(error: jose.InvalidToken, json_output: bool) -> NoReturn:
    claim = error.claim if isinstance(error, jose.ClaimError) else None
    detail = f" ({claim})" if claim else ""
    document: dict[str, Any] = {
        "valid": False,
        "code": error.code,
        "message": str(error),
        "claim": claim,
    }
    fail(
        document,
        f"refused ({error.code}): {error}{detail}",
        exit_code=EXIT_REFUSED,
        json_output=json_output,
    )

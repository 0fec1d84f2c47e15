"""``tessera serve``'s logs, from a real process: one JSON object a line on standard error, each
request's lines with its request id (the client's well-formed ``X-Request-Id``, else a made one,
echoed in the answer), and none of the secrets, tokens or passwords the run used — not in the
access log's paths either."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from ..services import free_port

TESSERA = Path(sys.executable).parent / "tessera"


def test_a_whole_run_logs_json_with_request_ids_and_no_secret(tmp_path: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    environment = {k: v for k, v in os.environ.items() if not k.startswith("TESSERA_")}
    environment.update(
        TESSERA_DATABASE_URL=f"sqlite:///{tmp_path / 'tessera.db'}",
        TESSERA_MASTER_KEY_FILE=str(tmp_path / "master.key"),
        TESSERA_ACCESS_LOG="true",
        TESSERA_ARGON2_MEMORY_KIB="64",
        NO_COLOR="1",
        COLUMNS="200",
        PYTHONUNBUFFERED="1",
    )
    stdout, stderr = tmp_path / "stdout.txt", tmp_path / "stderr.txt"
    with stdout.open("wb") as out, stderr.open("wb") as err:
        process = subprocess.Popen(
            [str(TESSERA), "serve", "--port", str(port)],
            cwd=tmp_path,
            env=environment,
            stdout=out,
            stderr=err,
        )
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, stderr.read_text()
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "tessera serve did not start"
            time.sleep(0.05)
        banner = stdout.read_text()
        admin = re.search(r"admin login\s+(\S+) / (\S+)", banner)
        demo = re.search(r"demo client\s+(\S+) / (\S+)", banner)
        assert admin is not None and demo is not None, banner
        client_id, secret = demo.group(1), demo.group(2)
        password = admin.group(2)
        with httpx.Client(base_url=base, timeout=10) as http:
            issued = http.post(
                "/oauth2/token",
                data={"grant_type": "client_credentials"},
                auth=(client_id, secret),
                headers={"X-Request-Id": "lb-7f3a.42"},
            )
            assert issued.status_code == 200
            assert issued.headers["x-request-id"] == "lb-7f3a.42"
            token = issued.json()["access_token"]
            introspected = http.post(
                "/oauth2/introspect", data={"token": token}, auth=(client_id, secret)
            )
            assert introspected.json()["active"] is True
            made = introspected.headers["x-request-id"]
            assert re.fullmatch(r"[0-9a-f]{32}", made)
            # A malformed id is replaced, never echoed.
            odd = http.get("/healthz", headers={"X-Request-Id": "<script>" + "x" * 200})
            assert re.fullmatch(r"[0-9a-f]{32}", odd.headers["x-request-id"])
            refused = http.post(
                "/oauth2/token",
                data={"grant_type": "password", "username": "admin", "password": password},
                auth=(client_id, secret),
            )
            assert refused.status_code in (400, 401)
            assert (
                http.post(
                    "/oauth2/token",
                    data={"grant_type": "client_credentials"},
                    auth=(client_id, "x" + secret),
                ).status_code
                == 401
            )
            hint = "eyJhbGciOiJSUzI1NiJ9.secret-looking-hint.signature"
            http.get("/oauth2/logout", params={"id_token_hint": hint, "state": "s3cr3t-state"})
            assert (
                http.post(
                    "/oauth2/revoke", data={"token": token}, auth=(client_id, secret)
                ).status_code
                == 200
            )
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=15)

    lines = stderr.read_text().splitlines()
    entries = [json.loads(line) for line in lines]  # every line is one JSON object
    assert entries and all({"time", "level", "logger", "message"} <= set(e) for e in entries)
    access = [e for e in entries if e["logger"] == "uvicorn.access"]
    assert {e["path"] for e in access} >= {"/oauth2/token", "/oauth2/introspect", "/oauth2/logout"}
    assert all("request_id" in e for e in access)
    assert any(e["request_id"] == "lb-7f3a.42" and e["path"] == "/oauth2/token" for e in access)
    assert any(e["request_id"] == made for e in access)
    text = stderr.read_text()
    for value in (secret, password, token, hint, "s3cr3t-state", "<script>"):
        assert value not in text, "a secret reached the log"

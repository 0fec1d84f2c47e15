"""One structured event per decision on the ``tessera.guard`` logger — never the token.

Each record carries ``outcome`` (``allow``/``deny``), ``code``, ``sub``, ``jti`` and ``route`` as
attributes (for JSON formatters) and in its message. Allows log at DEBUG, refusals at INFO.

>>> import logging
>>> record_decision("deny", "expired", route="/orders")  # a no-op unless the logger is enabled
"""

from __future__ import annotations

import logging

logger = logging.getLogger("tessera.guard")


def record_decision(
    outcome: str,
    code: str,
    *,
    sub: str | None = None,
    jti: str | None = None,
    route: str | None = None,
) -> None:
    """Log a decision: ``outcome`` and the stable ``code``, with who and where.

    >>> record_decision("allow", "ok", sub="ada", jti="t-1", route="/orders")
    """
    level = logging.DEBUG if outcome == "allow" else logging.INFO
    if not logger.isEnabledFor(level):
        return
    logger.log(
        level,
        "guard %s code=%s sub=%s jti=%s route=%s",
        outcome,
        code,
        sub or "-",
        jti or "-",
        route or "-",
        extra={"outcome": outcome, "code": code, "sub": sub, "jti": jti, "route": route},
    )

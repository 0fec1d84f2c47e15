"""The password policy of NIST SP 800-63B: long enough, not common, not the user's own name.

No composition rules (no "one digit, one symbol"); length is counted in Unicode code points after
NFKC normalisation; passwords found in a shipped list of common passwords are refused whatever
their case; so is a password that equals the username or the email.

>>> policy = PasswordPolicy(min_length=12)
>>> policy.check("correct horse battery staple", username="ada")
>>> try:
...     policy.check("Unbelievable", username="ada")
... except PasswordRejected as error:
...     print(error.reason, "-", error)
common - password is too common
"""

from __future__ import annotations

import functools
import unicodedata
from importlib import resources
from typing import Literal

MAX_LENGTH = 1024
COMMON_PASSWORDS = "common-passwords.txt"

Reason = Literal["too_short", "too_long", "common", "matches_identity"]

MESSAGES: dict[Reason, str] = {
    "too_short": "password is shorter than the minimum length",
    "too_long": f"password is longer than {MAX_LENGTH} characters",
    "common": "password is too common",
    "matches_identity": "password must not be the username or email",
}


class PasswordRejected(ValueError):
    """A password the policy refuses; the message is fixed per reason and never holds the password.

    >>> str(PasswordRejected("too_short"))
    'password is shorter than the minimum length'
    """

    def __init__(self, reason: Reason) -> None:
        super().__init__(MESSAGES[reason])
        self.reason: Reason = reason


def _fold(text: str) -> str:
    return unicodedata.normalize("NFKC", text).casefold()


@functools.cache
def common_passwords() -> frozenset[str]:
    """The shipped list of common passwords, casefolded; read once, on first use.

    >>> "password" in common_passwords(), "correct horse battery staple" in common_passwords()
    (True, False)
    """
    data = resources.files("tessera.idp").joinpath("data", COMMON_PASSWORDS)
    lines = data.read_text(encoding="utf-8").splitlines()
    return frozenset(_fold(line) for line in lines if line.strip())


class PasswordPolicy:
    """What a new password must satisfy; ``min_length`` is the setting ``password_min_length``."""

    def __init__(self, *, min_length: int = 12) -> None:
        if not 8 <= min_length <= 128:
            raise ValueError("min_length must be between 8 and 128")
        self.min_length = min_length

    def check(self, password: str, *, username: str = "", email: str | None = None) -> None:
        """Return if ``password`` is acceptable for this user, raise :class:`PasswordRejected`
        otherwise.

        >>> try:
        ...     PasswordPolicy(min_length=8).check("ada@example.com", email="Ada@Example.com")
        ... except PasswordRejected as error:
        ...     print(error.reason)
        matches_identity
        """
        if len(password) > 4 * MAX_LENGTH:  # bound the work before normalising
            raise PasswordRejected("too_long")
        normalised = unicodedata.normalize("NFKC", password)
        if len(normalised) < self.min_length:
            raise PasswordRejected("too_short")
        if len(normalised) > MAX_LENGTH:
            raise PasswordRejected("too_long")
        folded = normalised.casefold()
        identities = {_fold(name).strip() for name in (username, email or "") if name.strip()}
        if folded in identities or folded.strip() in identities:
            raise PasswordRejected("matches_identity")
        if folded in common_passwords():
            raise PasswordRejected("common")

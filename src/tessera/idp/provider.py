"""The provider: every service of the identity provider wired to one database and master key.

>>> from tessera.idp.config import Settings
>>> provider = Provider(Settings(database_url="sqlite://", master_key="A" * 43))
>>> provider.start()
>>> provider.keyring.signing_key().alg
'ES256'
>>> provider.close()
"""

from __future__ import annotations

from typing import Literal

from tessera import jose
from tessera.guard import Guard

from .config import Settings
from .services.authorization_codes import AuthorizationCodes
from .services.backchannel import BackchannelLogout
from .services.browser_sessions import BrowserSessions
from .services.challenges import Challenges
from .services.client_assertions import ClientAssertions
from .services.clients import ClientCache
from .services.id_tokens import IdTokenIssuer
from .services.keyring import Keyring
from .services.lockout import Lockout
from .services.own_tokens import DatabaseRevocations, KeyringKeys
from .services.password_policy import PasswordPolicy
from .services.passwords import Passwords
from .services.refresh import RefreshTokens
from .services.revocation import Fanout, Revocations
from .services.secrets import MasterKey
from .services.tokens import ACCESS_TOKEN_TYP, TokenIssuer
from .store.database import Database

# How many verified access tokens each of the provider's own guards keeps.
VERIFIED_TOKENS = 4096


class Provider:
    """Holds the services; HTTP handlers and the CLI reach everything through it."""

    def __init__(self, settings: Settings, *, fanout: Fanout | None = None) -> None:
        self.settings = settings
        # A connection for each worker thread of the routes' and of FastAPI's (anyio's), and
        # for the event loop's own reads and the housekeeping thread.
        self.database = Database(settings.database_url, pool_size=2 * settings.threads + 2)
        secret = settings.master_key.get_secret_value() if settings.master_key else None
        self.master = MasterKey.load(secret, settings.master_key_file)
        self.passwords = Passwords(
            memory_kib=settings.argon2_memory_kib,
            time_cost=settings.argon2_time_cost,
            parallelism=settings.argon2_parallelism,
        )
        self._owns_passwords = True
        self.password_policy = PasswordPolicy(min_length=settings.password_min_length)
        self.keyring = Keyring(self.database, self.master, settings)
        self.issuer = TokenIssuer(self.keyring, settings)
        self.id_tokens = IdTokenIssuer(self.keyring, settings)
        self.refresh = RefreshTokens(self.master, settings)
        self.codes = AuthorizationCodes(self.master, settings)
        self.sessions = BrowserSessions(self.master, self.database, settings)
        self.backchannel = BackchannelLogout(self.keyring, self.database, settings)
        self.clients = ClientCache(ttl=settings.client_cache_ttl)
        self.client_assertions = ClientAssertions(settings.issuer)
        if fanout is None and settings.redis_url:
            from .cache.fanout import RedisFanout

            fanout = RedisFanout(settings.redis_url, prefix=settings.redis_prefix)
        self.revocations = Revocations(fanout)
        self.lockout = Lockout(settings, self.master)
        self.challenges = Challenges(self.master, settings.issuer)
        self._own_keys = KeyringKeys(self.keyring)

    def guard(
        self,
        *,
        audience: str | jose.AnyAudience,
        realm: str,
        check_revocation: Literal["always", "sensitive", "by the route"] = "always",
    ) -> Guard:
        """The guard of one family of the provider's own routes: its access tokens (its issuer,
        algorithm and ``at+jwt``), keys from the keyring, revocation from the database — or,
        ``"by the route"``, left to a route that reads the database anyway and checks it in its
        own transaction (:meth:`~tessera.idp.services.revocation.Revocations.is_revoked`).

        >>> provider = Provider(Settings(database_url="sqlite://", master_key="A" * 43))
        >>> provider.guard(audience=jose.ANY_AUDIENCE, realm="tessera").realm
        'tessera'
        """
        return Guard(
            keys=self._own_keys,
            issuer=self.settings.issuer,
            audience=audience,
            algorithms=[self.settings.signing_alg],
            typ=ACCESS_TOKEN_TYP,
            require=("exp", "iat", "sub"),
            revocation=(
                None
                if check_revocation == "by the route"
                else DatabaseRevocations(self.database, self.revocations)
            ),
            check_revocation="always" if check_revocation == "by the route" else check_revocation,
            realm=realm,
            # Verified tokens are kept (expiry re-checked on every use): a person's token comes
            # back many times; revocation is never cached.
            cache=VERIFIED_TOKENS,
        )

    def use_passwords(self, passwords: Passwords) -> None:
        """Hash and verify with ``passwords`` from now on — other argon2id parameters, or one
        hasher shared by several providers in a process; whoever made it closes it. The hasher
        the provider made is closed now.

        >>> provider = Provider(Settings(database_url="sqlite://", master_key="A" * 43))
        >>> cheap = Passwords(memory_kib=8, time_cost=1)
        >>> provider.use_passwords(cheap); provider.close()
        >>> cheap.verify(cheap.hash("correct horse battery staple"), "correct horse battery staple")
        True
        >>> cheap.close()
        """
        if self._owns_passwords:
            self.passwords.close()
            self._owns_passwords = False
        self.passwords = passwords

    def start(self) -> None:
        """Migrate the database and make sure a signing key exists."""
        self.database.upgrade()
        self.keyring.ensure()

    def close(self) -> None:
        """Finish the back-channel logouts under way; release the database pool, the argon2
        threads and the Redis connections, if any."""
        self.backchannel.close()
        self.database.dispose()
        self.lockout.close()
        if self._owns_passwords:
            self.passwords.close()
        if self.revocations.fanout is not None:
            self.revocations.fanout.close()

"""The identity provider: accounts, clients and signing keys; it mints and revokes tokens.

>>> from tessera.idp.config import Settings
>>> Settings(database_url="sqlite://").access_token_ttl
900
"""

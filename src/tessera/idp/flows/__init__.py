"""Use cases of the identity provider: each takes the :class:`~tessera.idp.provider.Provider`
(and a database session) and decides one thing — grants, the second factor at login and in
self-service, revocation, introspection, bootstrap, housekeeping. HTTP handlers and the CLI call
them; components (``idp.services``) never import them.
"""

"""The HTTP face of the provider: OAuth 2.0 / OIDC endpoints, browser login, pages."""

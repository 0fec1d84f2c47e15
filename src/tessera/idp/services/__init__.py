"""Use cases of the identity provider; HTTP handlers and the CLI call these, nothing else."""

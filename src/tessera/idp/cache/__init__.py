"""Shared fast state: revocation fan-out to Redis when configured."""

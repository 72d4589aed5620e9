"""Random tokens that are shown once and stored only as their SHA-256: staff sign-in links
and doctors' calendar links. A 256-bit random token needs no slow hash: its SHA-256 can't
be searched back to it."""

from __future__ import annotations

import hashlib
import secrets

TOKEN_BYTES = 32
MAX_TOKEN_LENGTH = 200  # longer input is no token of ours, and is not even hashed


def new_token() -> tuple[str, str]:
    """A fresh token (43 URL-safe characters) and its hash, the only part to store."""
    token = secrets.token_urlsafe(TOKEN_BYTES)
    return token, token_hash(token)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()

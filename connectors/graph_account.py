"""Which Instagram account the access token opens: `GET {INSTAGRAM_GRAPH_URL}/me`, for the
console's and `python -m clinic status`'s connection check."""

from __future__ import annotations

import requests

from clinic.connection import TokenCheck
from clinic.settings import Settings

TIMEOUT_SECONDS = (3.05, 10.0)


def check_token(settings: Settings) -> TokenCheck:
    """The account's username, or Meta's error message and code (190: expired or wrong
    token; 10 or 200: a permission missing)."""
    token = settings.instagram_access_token
    if not token:
        return TokenCheck(False, error="INSTAGRAM_ACCESS_TOKEN is not set")
    try:
        answer = requests.get(
            f"{settings.graph_url.rstrip('/')}/me",
            params={"fields": "user_id,username"},
            headers={"Authorization": f"Bearer {token}"},
            timeout=TIMEOUT_SECONDS,
            allow_redirects=False,
        )
        body = answer.json()
    except requests.RequestException as error:
        return TokenCheck(False, error=f"the Graph API can't be reached ({type(error).__name__})")
    except ValueError:
        return TokenCheck(False, error=f"the Graph API answered HTTP {answer.status_code}")
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        return TokenCheck(
            False, error=f"{error.get('message', 'error')} (code {error.get('code')})"
        )
    username = body.get("username") if isinstance(body, dict) else None
    if answer.ok and isinstance(username, str):
        return TokenCheck(True, username=username)
    return TokenCheck(False, error=f"the Graph API answered HTTP {answer.status_code}")

"""The Graph API client: `POST {base_url}/me/messages` (and `take_thread_control`), one
blocking attempt per call, every answer an `Outcome` (connectors/graph_outcomes.py). Retries
are the outbox's (connectors/outbox.py), never the client's."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from requests.auth import AuthBase

from clinic.settings import Settings, SettingsError
from connectors.graph_outcomes import Outcome, Unavailable, classify_response


class _BearerAuth(AuthBase):
    """The token goes in the Authorization header only; as an auth object it also stops requests
    from replacing the header with credentials from ~/.netrc."""

    def __init__(self, token: str):
        self._token = token

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self._token}"
        return request


class GraphApiClient:
    """One `requests` session, its pool sized for `max_connections` threads at once."""

    def __init__(
        self,
        access_token: str,
        *,
        base_url: str,
        connect_timeout: float = 3.05,
        read_timeout: float = 10.0,
        max_connections: int = 16,
    ) -> None:
        if not access_token:
            raise ValueError("an access token is needed")
        if not base_url.startswith(("https://", "http://")):
            raise ValueError("base_url must start with https:// or http://")
        self.base_url = base_url.rstrip("/")
        self._messages_url = f"{self.base_url}/me/messages"
        self._take_control_url = f"{self.base_url}/me/take_thread_control"
        self._auth = _BearerAuth(access_token)
        self._timeout = (connect_timeout, read_timeout)
        self._session = requests.Session()
        adapter = HTTPAdapter(pool_maxsize=max_connections, max_retries=0)
        self._session.mount("https://", adapter)
        self._session.mount("http://", adapter)

    @classmethod
    def from_settings(cls, settings: Settings, **options: Any) -> GraphApiClient:
        """A client configured by INSTAGRAM_ACCESS_TOKEN and INSTAGRAM_GRAPH_URL."""
        if not settings.instagram_access_token:
            raise SettingsError("INSTAGRAM_ACCESS_TOKEN is not set")
        return cls(settings.instagram_access_token, base_url=settings.graph_url, **options)

    def post_once(self, body: Mapping[str, Any], url: str | None = None) -> Outcome:
        """One HTTP attempt; network trouble is an `Unavailable`, never an exception."""
        try:
            response = self._session.post(
                url or self._messages_url,
                json=body,
                auth=self._auth,
                timeout=self._timeout,
                allow_redirects=False,
            )
        except requests.RequestException as error:
            return Unavailable(type(error).__name__)
        return classify_response(
            response.status_code, response.content, response.headers.get("Retry-After")
        )

    def take_control(self, recipient_id: str) -> Outcome:
        """Takes the conversation back from the app it was handed to (one attempt)."""
        return self.post_once({"recipient": {"id": recipient_id}}, self._take_control_url)

    def close(self) -> None:
        self._session.close()

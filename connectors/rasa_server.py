"""`python -m connectors.rasa_server ARGS…`: `rasa run ARGS…`, with Rasa's HTTP API turned on
behind RASA_API_TOKEN (or the file named by RASA_API_TOKEN_FILE) when one is set.

The token is added to Rasa's arguments inside the process: `ps` and /proc show only the
command above, never the token.
"""

from __future__ import annotations

import sys

from clinic.settings import Settings, load_settings


def api_token(settings: Settings) -> str | None:
    if settings.rasa_api_token:
        return settings.rasa_api_token
    if settings.rasa_api_token_file:
        return settings.rasa_api_token_file.read_text(encoding="utf-8").strip() or None
    return None


def main() -> None:
    from rasa.__main__ import main as rasa_main

    arguments = ["rasa", "run", *sys.argv[1:]]
    token = api_token(load_settings())
    if token:  # the HTTP API is off unless a token protects it
        arguments += ["--enable-api", "--auth-token", token]
    sys.argv = arguments
    rasa_main()


if __name__ == "__main__":
    main()

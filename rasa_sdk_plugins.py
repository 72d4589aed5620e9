"""rasa_sdk's plugin module: its action server imports `rasa_sdk_plugins` from the path as it
starts and lets it extend the web application. Here: the clinic's checks (token, bounds, no
echo; actions/server.py), so `rasa run actions` and `python -m actions` serve alike."""

import pluggy

from actions.server import install

hookimpl = pluggy.HookimplMarker("rasa_sdk")


class ClinicChecks:
    @hookimpl
    def attach_sanic_app_extensions(self, app) -> None:  # noqa: ANN001 - rasa_sdk's Sanic app
        install(app)


def init_hooks(manager: pluggy.PluginManager) -> None:
    manager.register(ClinicChecks())

"""Rasa's responses rendered from the clinic's texts: the defaults of
clinic/templates.yml, with the clinic's own wording from its database (edited in the
staff console, used from the next message on: clinic/live_config.py).

`endpoints.yml` names this class under `nlg:`. Response `utter_<name>` says the text
`<name>`; domain.yml declares each one as `custom: {template: <name>}` and holds no text
(tests/test_architecture.py checks that the two agree).
"""

from __future__ import annotations

import asyncio
from typing import Any

from rasa.core.nlg.generator import NaturalLanguageGenerator
from rasa.shared.core.trackers import DialogueStateTracker

from clinic.db import create_database_engine
from clinic.live_config import LiveConfig
from clinic.settings import load_settings
from clinic.templates import TemplateError, Templates

UTTER_PREFIX = "utter_"


def template_of(utter_action: str) -> str:
    return utter_action.removeprefix(UTTER_PREFIX)


class TemplatesNLG(NaturalLanguageGenerator):
    """Rasa builds it before the model (and its domain) is loaded, so it needs neither."""

    def __init__(self, templates: Templates | None = None, **_: Any):
        self._fixed = templates
        if templates is None:
            settings = load_settings()
            self._live = LiveConfig(create_database_engine(settings.database_url), settings)

    async def _templates(self) -> Templates:
        """The texts as they are now (a database read at most once a second)."""
        if self._fixed is not None:
            return self._fixed
        return (await asyncio.to_thread(self._live.current)).templates

    async def generate(
        self,
        utter_action: str,
        tracker: DialogueStateTracker,
        output_channel: str,
        **kwargs: Any,
    ) -> dict[str, Any] | None:
        templates = await self._templates()
        try:
            return {"text": templates.render(template_of(utter_action))}
        except (KeyError, TemplateError):
            return None

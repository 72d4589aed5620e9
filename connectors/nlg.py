"""Rasa's responses rendered from clinic/templates.yml, the one file of patient texts.

`endpoints.yml` names this class under `nlg:`. Response `utter_<name>` says the text
`<name>` of templates.yml; domain.yml declares each one as `custom: {template: <name>}`
and holds no text (tests/test_architecture.py checks that the two agree).
"""

from __future__ import annotations

from typing import Any

from rasa.core.nlg.generator import NaturalLanguageGenerator
from rasa.shared.core.trackers import DialogueStateTracker

from clinic.settings import load_settings
from clinic.templates import TemplateError, Templates, templates_for

UTTER_PREFIX = "utter_"


def template_of(utter_action: str) -> str:
    return utter_action.removeprefix(UTTER_PREFIX)


class TemplatesNLG(NaturalLanguageGenerator):
    """Rasa builds it before the model (and its domain) is loaded, so it needs neither."""

    def __init__(self, templates: Templates | None = None, **_: Any):
        self._templates = templates or templates_for(load_settings())

    async def generate(
        self,
        utter_action: str,
        tracker: DialogueStateTracker,
        output_channel: str,
        **kwargs: Any,
    ) -> dict[str, Any] | None:
        try:
            return {"text": self._templates.render(template_of(utter_action))}
        except (KeyError, TemplateError):
            return None

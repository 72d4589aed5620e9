"""Rasa sets the level of its own logger ("rasa", from --debug, --verbose or LOG_LEVEL);
ours would follow the root logger's, which loading a model can lower to WARNING, and the
channel's and the core's INFO lines ("instagram item processed") would vanish. They follow
Rasa's level instead, explicitly."""

from __future__ import annotations

import logging

OUR_LOGGERS = ("connectors", "clinic", "entrypoints")


def follow_rasa_log_level() -> None:
    level = logging.getLogger("rasa").getEffectiveLevel()
    for name in OUR_LOGGERS:
        logging.getLogger(name).setLevel(level)

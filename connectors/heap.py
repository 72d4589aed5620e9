"""A loaded rasa server holds millions of long-lived objects (the model, vocabularies, the
domain) that every full garbage collection would walk, at random moments, inside a webhook.
Once the server has started they are moved out of the collector's sight (`gc.freeze`)."""

from __future__ import annotations

import gc
import logging
import threading

logger = logging.getLogger(__name__)
_lock = threading.Lock()
_frozen = False


def freeze_startup_objects() -> None:
    """Once per process, from a server's `after_server_start`."""
    global _frozen
    with _lock:
        if _frozen:
            return
        _frozen = True
        gc.collect()
        gc.freeze()
    logger.info("startup heap frozen: %d objects out of the collector's way", gc.get_freeze_count())

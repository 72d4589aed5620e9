"""Rasa's stores as the servers build them: "delete my data" deletes the conversation."""

from __future__ import annotations

import asyncio

from rasa.core.tracker_store import InMemoryTrackerStore
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import SlotSet, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker

from connectors.stores import ERASE_SLOT, ErasingTrackerStore

DOMAIN = Domain.from_yaml(
    f"""
version: "3.1"
slots:
  {ERASE_SLOT}:
    type: bool
    influence_conversation: false
    mappings: [{{type: custom}}]
"""
)


def test_a_conversation_whose_data_was_erased_is_deleted_instead_of_saved():
    store = ErasingTrackerStore(InMemoryTrackerStore(DOMAIN))

    async def scenario() -> tuple:
        for sender in ("IG_TEST_ERASED", "IG_TEST_KEPT"):
            tracker = DialogueStateTracker(sender, DOMAIN.slots)
            tracker.update(UserUttered("my name is PATIENT_TEST"))
            await store.save(tracker)
        tracker = await store.retrieve("IG_TEST_ERASED")
        tracker.update(SlotSet(ERASE_SLOT, True))
        await store.save(tracker)
        return await store.retrieve("IG_TEST_ERASED"), await store.retrieve("IG_TEST_KEPT")

    erased, kept = asyncio.run(scenario())
    assert erased is None
    assert kept is not None and kept.latest_message.text == "my name is PATIENT_TEST"

"""Fault points: named places where a test has the process killed (SIGKILL), to show that
what it was doing converges after a crash. Off unless the environment variable
CLINIC_FAULT_POINT names the place (read when the place is reached, not a setting: nothing
but tests sets it)."""

from __future__ import annotations

import os
import signal

# The rasa server is about to delete a conversation whose erasure was recorded (the
# patient's rows are gone already).
BEFORE_CONVERSATION_ERASED = "before_conversation_erased"


def fault_point(name: str) -> None:
    if os.environ.get("CLINIC_FAULT_POINT") == name:
        os.kill(os.getpid(), signal.SIGKILL)

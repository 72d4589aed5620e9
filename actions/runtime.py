"""The booking core the actions talk to, built once per process on first use."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar

from clinic.context import Clinic

T = TypeVar("T")

_clinic: Clinic | None = None


def current_clinic() -> Clinic:
    global _clinic
    if _clinic is None:
        _clinic = Clinic.from_environment()
    return _clinic


def use_clinic(clinic: Clinic | None) -> None:
    """Replaces the process's clinic (tests pass one with a frozen clock)."""
    global _clinic
    _clinic = clinic


async def run_core(function: Callable[..., T], *args: Any) -> T:
    """Runs a blocking core call in a worker thread so other chats keep moving."""
    return await asyncio.to_thread(function, *args)

"""Group commit: webhooks that arrive while the inbox commits go into the next commit
together; a failed commit answers each of its webhooks with the error; a webhook whose
client went away does not stop the others."""

from __future__ import annotations

import asyncio
import threading

import pytest

from connectors.group_commit import GroupCommit


class Store:
    """Records each commit's items; the first commit waits until released."""

    def __init__(self, fail_on: str | None = None) -> None:
        self.commits: list[list[str]] = []
        self.first_started = threading.Event()
        self.release = threading.Event()
        self.fail_on = fail_on

    def commit(self, items: list[str]) -> list[str]:
        self.commits.append(list(items))
        if len(self.commits) == 1:
            self.first_started.set()
            assert self.release.wait(10)
        if self.fail_on in items:
            raise ConnectionError("database unreachable")
        return items


async def started(store: Store, group: GroupCommit, items: list[str]) -> asyncio.Task:
    task = asyncio.create_task(group.submit(items))
    await asyncio.sleep(0)  # the task has queued its items
    return task


async def first_commit_running(store: Store, **options) -> tuple[GroupCommit, asyncio.Task]:
    """A group whose first commit, of "a", holds the writer until `store.release`."""
    group = GroupCommit(store.commit, **options)
    first = await started(store, group, ["a"])
    assert await asyncio.to_thread(store.first_started.wait, 10)
    return group, first


def test_webhooks_arriving_during_a_commit_share_the_next_one():
    store = Store()

    async def scenario() -> None:
        group, first = await first_commit_running(store)
        waiting = [await started(store, group, [m]) for m in ("b", "c")]
        waiting.append(await started(store, group, ["d", "e"]))  # a delivery of two
        store.release.set()
        assert await first == ["a"]
        results = await asyncio.gather(*waiting)
        assert results == [["b", "c", "d", "e"]] * 3  # each sees its batch's outcome
        group.close()

    asyncio.run(scenario())
    assert store.commits == [["a"], ["b", "c", "d", "e"]]


def test_a_failed_commit_fails_each_webhook_of_its_batch_only():
    store = Store(fail_on="b")

    async def scenario() -> None:
        group, first = await first_commit_running(store)
        failing = [await started(store, group, [m]) for m in ("b", "c")]
        store.release.set()
        assert await first == ["a"]
        for task in failing:
            with pytest.raises(ConnectionError):
                await task
        assert await group.submit(["f"]) == ["f"]  # the next commit goes on
        group.close()

    asyncio.run(scenario())
    assert store.commits == [["a"], ["b", "c"], ["f"]]


def test_a_webhook_whose_client_went_away_leaves_the_others_answered():
    store = Store()

    async def scenario() -> None:
        group, first = await first_commit_running(store)
        gone = await started(store, group, ["b"])
        stays = await started(store, group, ["c"])
        gone.cancel()
        store.release.set()
        assert await first == ["a"]
        assert await stays == ["b", "c"]  # still stored: Meta's retry of "b" is a duplicate
        group.close()

    asyncio.run(scenario())


def test_batches_are_bounded():
    store = Store()

    async def scenario() -> None:
        group, first = await first_commit_running(store, max_batch=2)
        rest = [await started(store, group, [m]) for m in "bcde"]
        store.release.set()
        await first
        await asyncio.gather(*rest)
        group.close()

    asyncio.run(scenario())
    assert store.commits == [["a"], ["b", "c"], ["d", "e"]]


def test_one_group_serves_one_event_loop_after_another():
    """As the channel's tests do (and a web server started again): a loop closed right after
    its webhook was answered leaves no commit counted as running."""
    store = Store()
    store.release.set()
    group = GroupCommit(store.commit)
    for item in ("a", "b", "c"):
        assert asyncio.run(asyncio.wait_for(group.submit([item]), 10)) == [item]
    group.close()
    assert store.commits == [["a"], ["b"], ["c"]]

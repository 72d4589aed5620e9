"""How `make test` spreads the test files over pytest-xdist's workers.

xdist's `loadfile` hands out files in order of their number of tests, so the few files that
start real rasa servers (three tests of 50 s each, say) came last and ran on alone after
the rest were done. Here those files go first, longest first, and the files whose tests
each start servers of their own are split into one unit per test; the others follow in
xdist's order and fill the gaps. Which tests run, and how, is unchanged.
"""

from __future__ import annotations

from xdist.scheduler import LoadFileScheduling

# Files that start real servers, longest first (by `pytest --durations=0`, summed per file).
LONGEST_FIRST = (
    "tests/test_scale_out.py",
    "tests/test_delivery_faults.py",
    "tests/test_privacy.py",
    "tests/test_handoff_e2e.py",
    "tests/test_run_shell.py",
    "tests/test_instagram_e2e.py",
    "tests/test_calendar_feeds.py",
)
# Their tests each start (and stop) servers of their own: one unit of work per test.
ONE_UNIT_PER_TEST = {"tests/test_delivery_faults.py", "tests/test_run_shell.py"}


class LongestFirst(LoadFileScheduling):
    def _split_scope(self, nodeid: str) -> str:
        file = nodeid.split("::", 1)[0]
        return nodeid if file in ONE_UNIT_PER_TEST else file

    def _assign_work_unit(self, node) -> None:  # noqa: ANN001 - xdist's worker handle
        self.workqueue.move_to_end(min(self.workqueue, key=_rank), last=False)
        super()._assign_work_unit(node)


def _rank(scope: str) -> int:
    """Position in LONGEST_FIRST; every other file after them (min keeps xdist's order)."""
    file = scope.split("::", 1)[0]
    return LONGEST_FIRST.index(file) if file in LONGEST_FIRST else len(LONGEST_FIRST)

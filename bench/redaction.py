"""What log redaction costs a turn, by how many values it keeps: one channel log line
redacted, and one turn's values registered (a new sender and new words) followed by a line.
Run: .venv/bin/python bench/redaction.py [--lines N]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from clinic.redaction import Redactor  # noqa: E402

LINE = "instagram item processed kind=text sender=3f2a9c1b0d"


def microseconds(action, repeat: int) -> float:
    started = time.perf_counter()
    for _ in range(repeat):
        action()
    return (time.perf_counter() - started) / repeat * 1e6


def measure(kept: int, lines: int) -> tuple[float, float]:
    """Microseconds for one line, and for one turn's new values then one line."""
    redactor = Redactor()
    for number in range(kept // 2):  # a value is kept as it is and as JSON escapes it
        redactor.register(f"IG_BENCH_{number}", f"word{number}")
    redactor.redact(LINE)
    numbers = iter(range(10**9))

    def turn() -> None:
        number = next(numbers)
        redactor.register(f"IG_NEW_{number}", f"my name is NEWNAME{number}")
        redactor.redact(LINE)

    return microseconds(lambda: redactor.redact(LINE), lines), microseconds(turn, lines // 10)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lines", type=int, default=300)
    args = parser.parse_args()
    print("values kept | one line redacted | a turn's new values registered, then one line")
    for kept in (100, 1000, 4096):
        line, turn = measure(kept, args.lines)
        print(f"{kept:>11} | {line:14.1f} us | {turn:14.1f} us")


if __name__ == "__main__":
    main()

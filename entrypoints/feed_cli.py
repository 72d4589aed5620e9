"""`python -m clinic doctors --feed-urls` and `doctors --rotate-feed ID`: the doctors'
calendar links from the command line.

Only a hash of each link is stored, so a link can be printed only when it is made:
`--feed-urls` makes one for each active doctor who has none and says of the others that a
link exists; `--rotate-feed ID` makes a new one for that doctor and the old stops working.
"""

from __future__ import annotations

import argparse
import sys

from clinic.context import Clinic
from clinic.feed_links import feed_links, feed_url, first_feed, rotate_feed


def add_arguments(doctors: argparse.ArgumentParser) -> None:
    links = doctors.add_mutually_exclusive_group()
    links.add_argument(
        "--feed-urls",
        action="store_true",
        help="a secret calendar link for each active doctor who has none (printed once; keep "
        "them private), and which doctors have one already",
    )
    links.add_argument(
        "--rotate-feed",
        type=int,
        metavar="ID",
        help="a new calendar link for doctor ID, printed once; their old link stops working",
    )


def print_feed_links(clinic: Clinic) -> int:
    """One line a doctor: id, name, and their new link or what stands instead of it."""
    for link in feed_links(clinic):
        if link.issued_at is None and link.active:
            token = first_feed(clinic, link.doctor_id)
            if token is not None:
                url = feed_url(clinic.settings, link.doctor_id, token)
                print(f"{link.doctor_id}\t{link.doctor_name}\t{url}")
                continue
        if link.issued_at is None and not link.active:
            state = "inactive: no calendar link"
        else:
            state = (
                "a calendar link exists (shown only when made); "
                f"`python -m clinic doctors --rotate-feed {link.doctor_id}` replaces it"
            )
        print(f"{link.doctor_id}\t{link.doctor_name}\t{state}")
    return 0


def print_rotated_link(clinic: Clinic, doctor_id: int) -> int:
    """A new link for the doctor, printed once (alone on stdout, for scripts); the note on
    stderr. `UnknownDoctorError` for an unknown id."""
    token = rotate_feed(clinic, doctor_id)
    print(feed_url(clinic.settings, doctor_id, token))
    print(
        f"Doctor {doctor_id}'s old calendar link no longer works: send them this one.",
        file=sys.stderr,
    )
    return 0

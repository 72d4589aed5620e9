"""`python -m clinic`: what staff type, what they see, and the exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime, time
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from clinic.booking import book
from clinic.context import Clinic
from clinic.db import create_database_engine
from clinic.settings import load_settings
from entrypoints.cli import main
from tests.factories import add_patient

ROOT = Path(__file__).resolve().parent.parent
NEW_YORK = ZoneInfo("America/New_York")


@pytest.fixture
def database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("CLINIC_TIMEZONE", "America/New_York")
    return url


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def seeded_clinic(clock) -> Clinic:
    settings = load_settings()
    return Clinic(create_database_engine(settings.database_url), settings, clock)


def test_init_and_seed_are_idempotent_and_keep_data(database, capsys, clock):
    assert run(capsys, "init")[0] == 0
    code, out, _ = run(capsys, "seed", "--demo")
    assert code == 0 and "Added Dr. Demo (id 1)" in out
    clinic = seeded_clinic(clock)
    patient = add_patient(clinic)
    book(clinic, 1, patient.id, datetime(2026, 2, 3, 14, tzinfo=NEW_YORK))
    assert run(capsys, "init")[0] == 0
    code, out, _ = run(capsys, "seed", "--demo")
    assert code == 0 and "already present" in out
    code, out, _ = run(capsys, "appointments", "--json", "--day", "2026-02-03")
    assert code == 0 and len(out.splitlines()) == 1


def test_seeding_if_empty_leaves_a_clinic_with_its_own_doctors_alone(database, capsys, clock):
    from tests.factories import add_doctor

    run(capsys, "init")
    add_doctor(seeded_clinic(clock), name="Dr. Own")
    code, out, _ = run(capsys, "seed", "--demo", "--if-empty")
    assert code == 0 and "no demo doctor added" in out
    code, out, _ = run(capsys, "doctors")
    assert "Dr. Own" in out and "Dr. Demo" not in out


def test_appointments_json_has_ids_iso_offsets_and_status(database, capsys, clock):
    run(capsys, "init"), run(capsys, "seed", "--demo")
    clinic = seeded_clinic(clock)
    patient = add_patient(clinic)
    book(clinic, 1, patient.id, datetime(2026, 2, 3, 14, tzinfo=NEW_YORK))
    book(clinic, 1, patient.id, datetime(2026, 3, 31, 9, tzinfo=NEW_YORK))
    code, out, _ = run(capsys, "appointments", "--json", "--all")
    rows = [json.loads(line) for line in out.splitlines()]
    assert code == 0
    assert rows[0] == {
        "id": 1,
        "doctor_id": 1,
        "patient_id": patient.id,
        "start": "2026-02-03T14:00:00-05:00",
        "end": "2026-02-03T14:30:00-05:00",
        "status": "booked",
    }
    assert rows[1]["start"] == "2026-03-31T09:00:00-04:00"  # daylight saving time by then
    code, out, _ = run(capsys, "appointments", "--day", "2026-03-31")
    assert code == 0 and "2026-03-31 09:00-09:30" in out and "patient" in out
    assert "PATIENT_TEST" not in out


def test_doctors_lists_hours(database, capsys):
    run(capsys, "init"), run(capsys, "seed", "--demo")
    code, out, _ = run(capsys, "doctors")
    assert code == 0
    assert "Dr. Demo" in out and "Mon 09:00-12:00" in out and "Fri 13:00-17:00" in out


def test_block_removes_slots_and_warns_about_kept_bookings(database, capsys, clock):
    from clinic.availability import available_slots

    run(capsys, "init"), run(capsys, "seed", "--demo")
    clinic = seeded_clinic(clock)
    patient = add_patient(clinic)
    book(clinic, 1, patient.id, datetime(2026, 2, 3, 9, tzinfo=NEW_YORK))
    code, out, _ = run(
        capsys,
        "block",
        "--from",
        "2026-02-03 08:00",
        "--to",
        "2026-02-03 11:00",
        "--reason",
        "Staff meeting",
        "--doctor",
        "1",
    )
    assert code == 0 and "1 booked appointment(s)" in out
    free = [f"{s:%H:%M}" for s in available_slots(clinic, 1, datetime(2026, 2, 3).date())]
    assert free[0] == "11:00"
    assert time(9) not in [
        s.time() for s in available_slots(clinic, 1, datetime(2026, 2, 3).date())
    ]


@pytest.mark.parametrize(
    "argv",
    [
        ["block", "--from", "tomorrow", "--to", "2026-02-03", "--reason", "x"],
        ["block", "--from", "2026-02-03", "--to", "2026-02-03T08:00+01:00", "--reason", "x"],
        ["block", "--from", "2026-02-03"],
        ["appointments", "--day", "Feb 3"],
        ["seed"],
        ["nonsense"],
        [],
    ],
)
def test_bad_arguments_exit_2_with_a_message(database, capsys, argv):
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2
    assert "error" in capsys.readouterr().err


def test_logical_errors_exit_non_zero(database, capsys):
    run(capsys, "init"), run(capsys, "seed", "--demo")
    code, _, err = run(
        capsys,
        "block",
        "--from",
        "2026-02-03 10:00",
        "--to",
        "2026-02-03 09:00",
        "--reason",
        "backwards",
    )
    assert code == 2 and "--to must be after --from" in err
    code, _, err = run(
        capsys,
        "block",
        "--from",
        "2026-02-03",
        "--to",
        "2026-02-04",
        "--reason",
        "x",
        "--doctor",
        "99",
    )
    assert code == 2 and "no doctor with id 99" in err


def test_python_dash_m_clinic_reports_a_bad_setting(tmp_path):
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path}/x.db",
        "CLINIC_TIMEZONE": "Mars/Base",
    }
    result = subprocess.run(
        [sys.executable, "-m", "clinic", "doctors"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1
    assert "CLINIC_TIMEZONE='Mars/Base' is not a time zone" in result.stderr

"""The calendar: the whole clinic's day (the home page) and one doctor's week."""

from __future__ import annotations

from datetime import date, timedelta

from flask import render_template, request
from flask_login import current_user

from clinic import schedule
from clinic.db import transaction
from clinic.doctors import active_doctors
from clinic.front_desk import calls_to_make
from clinic.schedule import Grid, clinic_day, week_start
from clinic.setup_checklist import setup_checklist
from console.app import desk


def today():  # noqa: ANN201 - a Flask view
    """The clinic's day (`?day=`, today by default): a column a doctor."""
    clinic = desk().clinic
    day = _day(request.args.get("day")) or clinic.today()
    grid = clinic_day(clinic, day)
    return render_template(
        "today.html",
        grid=grid,
        rows=table_rows(grid),
        day=day,
        previous=day - timedelta(days=1),
        next=day + timedelta(days=1),
        calls=calls_to_make(clinic),
        checklist=setup_checklist(clinic) if current_user.is_admin else None,
    )


def doctor_week():  # noqa: ANN201 - a Flask view
    """One doctor's week (`?doctor=&week=`): a column a day."""
    clinic = desk().clinic
    with transaction(clinic.engine) as session:
        doctors = [(d.id, d.name) for d in active_doctors(session)]
    if not doctors:
        return render_template("week.html", doctors=[], grid=None)
    ids = [d for d, _ in doctors]
    wanted = request.args.get("doctor", "")
    doctor_id = int(wanted) if wanted.isdigit() and int(wanted) in ids else ids[0]
    monday = week_start(_day(request.args.get("week")) or clinic.today())
    grid = schedule.doctor_week(clinic, doctor_id, monday)
    return render_template(
        "week.html",
        doctors=doctors,
        doctor_id=doctor_id,
        grid=grid,
        rows=table_rows(grid),
        monday=monday,
        sunday=monday + timedelta(days=6),
        previous=monday - timedelta(days=7),
        next=monday + timedelta(days=7),
        this_week=week_start(clinic.today()),
    )


def table_rows(grid: Grid) -> list[list]:
    """The grid as table rows: in each, per column, the cell that starts there (with what
    overlaps it), None where an earlier cell still runs, or "" for nothing."""
    layout = [["" for _ in grid.columns] for _ in grid.rows]
    for index, column in enumerate(grid.columns):
        open_until, current = -1, None
        for cell in column.cells:
            row = min(cell.row, len(grid.rows) - 1)
            end = min(row + cell.rows, len(grid.rows))
            if current is not None and row < open_until:
                current["cells"].append(cell)  # overlaps the cell above: shown inside it
                if end > open_until:
                    for covered in range(open_until, end):
                        layout[covered][index] = None
                    open_until = end
                    current["rows"] = end - current["row"]
                continue
            current = {"row": row, "rows": end - row, "cells": [cell]}
            layout[row][index] = current
            for covered in range(row + 1, end):
                layout[covered][index] = None
            open_until = end
    return layout


def _day(raw: str | None) -> date | None:
    try:
        return date.fromisoformat(raw) if raw else None
    except ValueError:
        return None

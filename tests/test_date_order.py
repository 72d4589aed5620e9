"""How numeric dates are read: DATE_ORDER, or by default the order of the clinic's country,
found from CLINIC_TIMEZONE (clinic/settings.py: default_date_order)."""

from __future__ import annotations

import pytest

from clinic.settings import DATE_ORDERS, SettingsError, default_date_order, load_settings


@pytest.mark.parametrize(
    ("zone", "order"),
    [
        # 2/5 is February 5
        ("America/New_York", "MDY"),
        ("America/Chicago", "MDY"),
        ("America/Toronto", "MDY"),
        ("America/Puerto_Rico", "MDY"),
        ("Asia/Manila", "MDY"),
        ("Pacific/Guam", "MDY"),
        ("US/Eastern", "MDY"),  # old alias names belong to no country's list
        ("Canada/Pacific", "MDY"),
        # 2/5 is 2 May
        ("Europe/Berlin", "DMY"),
        ("Europe/London", "DMY"),
        ("Europe/Paris", "DMY"),
        ("Australia/Sydney", "DMY"),
        ("Asia/Kolkata", "DMY"),
        # dates start with the year
        ("Asia/Tokyo", "YMD"),
        ("Asia/Shanghai", "YMD"),
        ("Asia/Seoul", "YMD"),
        ("Asia/Taipei", "YMD"),
        ("Europe/Budapest", "YMD"),
        ("Europe/Vilnius", "YMD"),
    ],
)
def test_the_zones_country_decides_the_order(zone: str, order: str) -> None:
    assert default_date_order(zone) == order


@pytest.mark.parametrize("zone", ["UTC", "Etc/UTC", "Not/AZone"])
def test_a_zone_of_no_country_reads_day_first(zone: str) -> None:
    assert default_date_order(zone) == "DMY"


@pytest.mark.parametrize(("raw", "order"), [("dmy", "DMY"), ("MDY", "MDY"), (" ymd ", "YMD")])
def test_date_order_is_read_in_any_case(raw: str, order: str) -> None:
    assert load_settings({"DATE_ORDER": raw}).date_order == order


@pytest.mark.parametrize("raw", ["DD/MM/YYYY", "day first", "MYD", "DM"])
def test_an_unknown_date_order_is_refused_naming_the_variable(raw: str) -> None:
    with pytest.raises(SettingsError, match="DATE_ORDER") as refused:
        load_settings({"DATE_ORDER": raw})
    assert all(order in str(refused.value) for order in DATE_ORDERS)


@pytest.mark.parametrize(
    ("zone", "order"),
    [("Europe/London", "DMY"), ("America/New_York", "MDY"), ("Asia/Tokyo", "YMD")],
)
def test_without_date_order_the_clinics_zone_decides(zone: str, order: str) -> None:
    assert load_settings({"CLINIC_TIMEZONE": zone}).date_order == order


def test_an_empty_date_order_counts_as_unset() -> None:
    settings = load_settings({"CLINIC_TIMEZONE": "Europe/London", "DATE_ORDER": ""})
    assert settings.date_order == "DMY"


def test_the_default_zone_reads_month_first() -> None:
    settings = load_settings({})
    assert settings.timezone == "America/New_York"
    assert settings.date_order == "MDY"


def test_date_order_wins_over_the_zone() -> None:
    settings = load_settings({"CLINIC_TIMEZONE": "America/New_York", "DATE_ORDER": "dmy"})
    assert settings.date_order == "DMY"
    settings = load_settings({"CLINIC_TIMEZONE": "Europe/Berlin", "DATE_ORDER": "MDY"})
    assert settings.date_order == "MDY"

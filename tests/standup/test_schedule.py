"""When standups fire: crontab lines in a local zone, weekends, daylight saving, period keys."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, tzinfo
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bot.config import ConfigError, load_settings
from bot.core.cron import adhoc_period_key, crontab_trigger, last_fire_time, period_key
from bot.services.standups import standup_schedules

BERLIN = ZoneInfo("Europe/Berlin")


def fires(expr: str, start: datetime, count: int, zone: tzinfo = BERLIN) -> list[datetime]:
    trigger = crontab_trigger(expr, timezone=zone)
    times: list[datetime] = []
    previous = None
    now = start
    for _ in range(count):
        fire = trigger.get_next_fire_time(previous, now)
        assert fire is not None
        times.append(fire)
        previous = now = fire
    return times


def test_weekday_standups_skip_the_weekend_and_keep_local_time_across_the_dst_change() -> None:
    # Berlin moves to summer time on Sunday 29 March 2026.
    times = fires("30 9 * * mon-fri", datetime(2026, 3, 26, 12, 0, tzinfo=BERLIN), 4)

    assert [t.astimezone(UTC) for t in times] == [
        datetime(2026, 3, 27, 8, 30, tzinfo=UTC),  # Fri 09:30 CET
        datetime(2026, 3, 30, 7, 30, tzinfo=UTC),  # Mon 09:30 CEST: the weekend is skipped
        datetime(2026, 3, 31, 7, 30, tzinfo=UTC),
        datetime(2026, 4, 1, 7, 30, tzinfo=UTC),
    ]
    assert [period_key(t, BERLIN) for t in times] == [
        "2026-03-27T09:30",
        "2026-03-30T09:30",
        "2026-03-31T09:30",
        "2026-04-01T09:30",
    ]


def test_weekend_standups_fire_on_saturday_and_sunday_either_side_of_the_change() -> None:
    times = fires("0 10 * * sat,sun", datetime(2026, 3, 27, 12, 0, tzinfo=BERLIN), 3)

    assert [t.astimezone(UTC) for t in times] == [
        datetime(2026, 3, 28, 9, 0, tzinfo=UTC),  # Sat 10:00 CET
        datetime(2026, 3, 29, 8, 0, tzinfo=UTC),  # Sun 10:00 CEST
        datetime(2026, 4, 4, 8, 0, tzinfo=UTC),  # next Saturday
    ]
    assert [period_key(t, BERLIN) for t in times] == [
        "2026-03-28T10:00",
        "2026-03-29T10:00",
        "2026-04-04T10:00",
    ]


def test_a_slot_that_repeats_when_clocks_go_back_has_one_period_key() -> None:
    # 02:30 happens twice in Berlin on Sunday 25 October 2026; APScheduler fires at both.
    first, second, third = fires("30 2 * * *", datetime(2026, 10, 25, 0, 0, tzinfo=BERLIN), 3)

    assert second.astimezone(UTC) - first.astimezone(UTC) == timedelta(hours=1)
    assert period_key(first, BERLIN) == period_key(second, BERLIN) == "2026-10-25T02:30"
    assert period_key(third, BERLIN) == "2026-10-26T02:30"


def test_numeric_weekdays_count_from_sunday_as_in_crontab() -> None:
    start = datetime(2026, 3, 2, 0, 0, tzinfo=UTC)  # a Monday
    named = fires("30 9 * * mon-fri", start, 10, UTC)

    assert fires("30 9 * * 1-5", start, 10, UTC) == named
    assert {t.strftime("%a") for t in named} == {"Mon", "Tue", "Wed", "Thu", "Fri"}
    assert fires("0 10 * * 0", start, 1, UTC)[0].strftime("%a") == "Sun"
    assert fires("0 10 * * 7", start, 1, UTC)[0].strftime("%a") == "Sun"
    assert [t.strftime("%a") for t in fires("0 10 * * 5-7", start, 3, UTC)] == [
        "Fri",
        "Sat",
        "Sun",
    ]
    assert [t.strftime("%a") for t in fires("0 10 * * */2", start, 4, UTC)] == [
        "Tue",
        "Thu",
        "Sat",
        "Sun",
    ]


def test_the_latest_slot_at_or_before_now() -> None:
    trigger = crontab_trigger("30 9 * * mon-fri", timezone=BERLIN)
    monday_early = datetime(2026, 3, 30, 8, 0, tzinfo=BERLIN)
    friday_slot = datetime(2026, 3, 27, 9, 30, tzinfo=BERLIN)

    assert last_fire_time(trigger, now=monday_early, lookback=timedelta(days=4)) == friday_slot
    assert last_fire_time(trigger, now=monday_early, lookback=timedelta(days=1)) is None
    assert last_fire_time(trigger, now=friday_slot, lookback=timedelta(hours=2)) == friday_slot
    every_minute = crontab_trigger("* * * * *", timezone=BERLIN)
    now = datetime(2026, 3, 30, 8, 0, 59, tzinfo=BERLIN)
    assert last_fire_time(every_minute, now=now, lookback=timedelta(days=1)) == now.replace(
        second=0
    )


def test_an_adhoc_period_is_the_local_minute() -> None:
    now = datetime(2026, 3, 30, 7, 47, 31, tzinfo=UTC)
    assert adhoc_period_key(now, BERLIN) == "adhoc:2026-03-30T09:47"


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("PMTEAM_STANDUP_CHANNELS", "PMTEAM_COORDINATION_CHANNEL", "PMTEAM_STANDUP_CRON"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


@pytest.mark.usefixtures("clean_env")
def test_extra_standup_channels_are_read_with_their_own_crontabs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PMTEAM_COORDINATION_CHANNEL", "C0PM")
    monkeypatch.setenv("PMTEAM_STANDUP_CHANNELS", "C123=30 9 * * mon-fri; C456=0  10 * * * ;")
    settings = load_settings()

    assert settings.standup_channels == {"C123": "30 9 * * mon-fri", "C456": "0 10 * * *"}
    assert settings.standup_grace_minutes == 120
    assert settings.standup_skip_empty is False
    assert settings.retention_days == 0
    schedules = standup_schedules(settings)
    assert [(s.channel_id, s.cron) for s in schedules] == [
        ("C0PM", "30 9 * * mon-fri"),
        ("C123", "30 9 * * mon-fri"),
        ("C456", "0 10 * * *"),
    ]


@pytest.mark.usefixtures("clean_env")
def test_a_bad_standup_channel_entry_names_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PMTEAM_STANDUP_CHANNELS", "C123=at nine")
    with pytest.raises(ConfigError, match="C123.*crontab"):
        load_settings()
    monkeypatch.setenv("PMTEAM_STANDUP_CHANNELS", "C123 30 9 * * *")
    with pytest.raises(ConfigError, match="CHANNEL=CRONTAB"):
        load_settings()

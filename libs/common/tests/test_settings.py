import argparse
import dataclasses

import pytest

from hsm_common import settings


def test_flags_fall_back_to_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HSM_X_RESCAN_INTERVAL", "2m")
    parser = argparse.ArgumentParser()
    settings.add_flag(
        parser, "HSM_X", "--rescan-interval", type=settings.parse_duration, default=30.0, help="h"
    )
    assert parser.parse_args([]).rescan_interval == 120.0
    assert parser.parse_args(["--rescan-interval", "5s"]).rescan_interval == 5.0


@pytest.mark.parametrize(
    ("text", "seconds"), [("250ms", 0.25), ("30s", 30), ("5m", 300), ("1h30m", 5400), ("7", 7)]
)
def test_durations_parse(text: str, seconds: float) -> None:
    assert settings.parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "5 minutes", "5x", "m5"])
def test_bad_durations_say_what_is_expected(text: str) -> None:
    with pytest.raises(ValueError, match="invalid duration"):
        settings.parse_duration(text)


@dataclasses.dataclass(frozen=True)
class _Config:
    name: str
    interval: float = 30.0
    paths: tuple[str, ...] = dataclasses.field(default_factory=lambda: ("/a",))


def test_flags_take_their_defaults_from_the_settings_dataclass() -> None:
    assert settings.default_of(_Config, "interval") == 30.0
    assert settings.default_of(_Config, "paths") == ("/a",)


@pytest.mark.parametrize(("field", "message"), [("name", "has no default"), ("nme", "has no field")])
def test_a_field_without_default_or_a_misspelt_one_fails_at_start_up(field: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        settings.default_of(_Config, field)

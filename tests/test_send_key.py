"""Send keys: built, parsed back, and refused when they are not ours."""

from datetime import datetime

from wa_cloud.send_key import (
    SendKey,
    parse_send_key,
    send_key,
    start_key,
)


def test_start_key_from_a_datetime_and_its_string():
    assert start_key(datetime(2026, 2, 3, 17, 30)) == "20260203T173000"
    assert start_key("2026-02-03 17:30:00") == "20260203T173000"
    assert start_key(None) == "none"


def test_send_key_round_trip():
    key = send_key(12, "reminder", 7, "20260203T173000")
    assert key == "wac:12:reminder:7:20260203T173000"
    assert parse_send_key(key) == SendKey(12, "reminder", 7, "20260203T173000")


def test_foreign_keys_are_not_send_keys():
    for key in (None, "", "wac:12:reminder:7", "other:12:reminder:7:x", "wac:x:reminder:7:y",
                "wac:12:reminder:seven:y"):
        assert parse_send_key(key) is None

from __future__ import annotations

import pathlib

import pytest

from hsm_discovery import ccid


def test_plist_ids_are_normalised(data_dir: pathlib.Path) -> None:
    assert ccid.parse((data_dir / "Info.plist").read_bytes()) == {("04e6", "5817"), ("08e6", "3437")}


def test_first_readable_plist_wins(data_dir: pathlib.Path, tmp_path: pathlib.Path) -> None:
    allowed = ccid.load([tmp_path / "missing.plist", data_dir / "Info.plist"])
    assert ("08e6", "3437") in allowed


def test_invalid_plist_is_skipped(data_dir: pathlib.Path, tmp_path: pathlib.Path) -> None:
    broken = tmp_path / "Info.plist"
    broken.write_bytes(b"<plist>not closed")
    assert ccid.load([broken, data_dir / "Info.plist"]) == ccid.parse((data_dir / "Info.plist").read_bytes())


def test_mismatched_id_arrays_are_rejected() -> None:
    text = b"""<?xml version="1.0"?><plist version="1.0"><dict>
    <key>ifdVendorID</key><array><string>0x04E6</string></array>
    <key>ifdProductID</key><array/></dict></plist>"""
    with pytest.raises(ValueError, match="same length"):
        ccid.parse(text)


def test_no_plist_gives_an_empty_allowlist(tmp_path: pathlib.Path) -> None:
    assert ccid.load([tmp_path / "none.plist"]) == frozenset()

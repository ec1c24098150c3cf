"""Whether a PIN shows in what a process wrote, told apart from numbers that contain its digits by chance."""

from __future__ import annotations

import re

#: Timestamps and decimal figures (durations, sizes in seconds): a 4-digit PIN such as 1234 can be part of
#: one by chance ("08.123496"), which says nothing about the PIN.
_FIGURES = re.compile(r"\d[\d:.+\-T]*\.\d+")


def shows(pin: str, text: str) -> bool:
    """The PIN appears in text outside its timestamps and decimal figures."""
    return pin in _FIGURES.sub(" ", text)

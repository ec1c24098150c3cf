"""Fixtures: a fresh emulated SmartCard-HSM in its own sandbox per test, and the agent on it (harness.py)."""

from __future__ import annotations

import os
import pathlib
from collections.abc import Iterator

import grpc
import pytest

from devcluster.schsm import sandbox
from hsmproto import channel
from hsmproto.v1 import hsm_pb2_grpc

from . import harness


@pytest.fixture
def card_stack(token_root: pathlib.Path) -> Iterator[harness.CardStack]:
    """An emulated SmartCard-HSM, initialised with PIN and in vpcd's reader, in a fresh sandbox; no agent yet.

    Emulated: the card alone (its commands, its flash as a file, its presence as a TCP connection to vpcd).
    Real: pcscd with vpcd, OpenSC, and the agent process each test starts (harness.py says more).
    """
    reason = sandbox.missing() or (
        None if os.path.exists(harness.MODULE) else "OpenSC's PKCS#11 module is missing"
    )
    if reason:
        pytest.skip(reason)
    pin_file = token_root / "pin"
    pin_file.write_text(harness.PIN + "\n")
    box = sandbox.Sandbox(token_root / "sandbox")
    box.open()
    state = token_root / "card.json"
    card = sandbox.Card(
        box, state, token_root / "card.log", f"--serial={harness.SERIAL}", f"--pin-file={pin_file}"
    )
    stack = harness.CardStack(token_root, box, card, state, pin_file, token_root / "agent.sock")
    try:
        card.start()
        yield stack
    finally:
        for chan in stack.channels:
            chan.close()
        stack.stop_agent()
        card.stop()
        box.close()


@pytest.fixture
def agent_channel(card_stack: harness.CardStack) -> Iterator[grpc.Channel]:
    """A channel to a connected agent on the card."""
    card_stack.start_agent()
    with grpc.insecure_channel(f"unix:{card_stack.socket}", options=channel.channel_options()) as chan:
        try:
            harness.wait_connected(channel.agent_stub(chan))
        except AssertionError as error:
            raise AssertionError(f"{error}\n{card_stack.log_tail()}") from None
        yield chan


@pytest.fixture
def stub(agent_channel: grpc.Channel) -> hsm_pb2_grpc.HSMAgentStub:
    return channel.agent_stub(agent_channel)

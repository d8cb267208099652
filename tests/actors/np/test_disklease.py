"""The disk lease's pure parts: the slot record (authenticated, garbage and foreign slots
refused with a reason) and the verdict rules; the timing relations the safety argument needs."""

from __future__ import annotations

import os

import pytest

from actors.np import disklease as dl
from actors.np.disklease import Slot, SlotError, SlotState

KEY = dl.slot_key(b"k" * 32)
SERVERS = ["node1", "node2", "node3"]


def slot(server: str, state=SlotState.IDLE, incarnation=7, seq=1, np="disk") -> Slot:
    return Slot(state, incarnation, seq, 0, b"\0" * 16, dl.name_digest(np), dl.name_digest(server))


def test_a_slot_reads_back_as_written_and_fills_one_aligned_block() -> None:
    s = slot("node1", SlotState.HOLD, seq=42)
    raw = dl.encode(KEY, s)
    assert len(raw) == dl.SLOT_BYTES == 4096
    assert dl.read_slot(KEY, raw, "disk", "node1") == s


def test_an_all_zero_slot_is_empty() -> None:
    assert dl.read_slot(KEY, bytes(4096), "disk", "node1") is None


@pytest.mark.parametrize(
    "raw, reason",
    [
        (os.urandom(4096), "garbage"),
        (b"HVNP" + os.urandom(4092), "unsupported version"),
        (dl.encode(dl.slot_key(b"other cluster key".ljust(32)), slot("node1")), "forged"),
        (dl.encode(KEY, slot("node2")), "misplaced"),  # node2's slot copied into node1's place
        (dl.encode(KEY, slot("node1", np="another")), "misplaced"),  # another resource's area
        (b"\x01" * 10, "garbage"),
    ],
)
def test_slots_that_cannot_be_trusted_are_refused_with_a_reason(raw: bytes, reason: str) -> None:
    with pytest.raises(SlotError, match=reason):
        dl.read_slot(KEY, raw, "disk", "node1")


def test_a_flipped_bit_spoils_the_mac() -> None:
    raw = bytearray(dl.encode(KEY, slot("node1")))
    raw[20] ^= 1
    with pytest.raises(SlotError, match="forged"):
        dl.read_slot(KEY, bytes(raw), "disk", "node1")


def test_the_slot_mac_is_not_the_heartbeats() -> None:
    assert dl.slot_key(b"k" * 32) != b"k" * 32


# --- the verdict -------------------------------------------------------------------------


def judge(me, before, after, mine=(7, 1)):
    return dl.judge(me, SERVERS, before, after, mine)


def test_alone_on_the_disk_we_win() -> None:
    mine = slot("node2", SlotState.CLAIM, seq=3)
    assert judge(1, [None, None, None], [None, mine, None], (7, 3)).win


def test_a_live_holder_beats_everyone_even_a_higher_priority_claimer() -> None:
    holder_then, holder_now = (
        slot("node3", SlotState.HOLD, 5, 10),
        slot("node3", SlotState.HOLD, 5, 11),
    )
    mine = slot("node1", SlotState.CLAIM, seq=3)
    verdict = judge(0, [None, None, holder_then], [mine, None, holder_now], (7, 3))
    assert not verdict.win and "node3 holds" in verdict.reason


def test_between_two_live_claimers_the_earlier_server_wins() -> None:
    a0, a1 = slot("node1", SlotState.CLAIM, 1, 3), slot("node1", SlotState.CLAIM, 1, 4)
    b0, b1 = slot("node2", SlotState.CLAIM, 2, 3), slot("node2", SlotState.CLAIM, 2, 4)
    assert judge(0, [a0, b0, None], [a1, b1, None], (1, 3)).win
    verdict = judge(1, [a0, b0, None], [a1, b1, None], (2, 3))
    assert not verdict.win and "node1" in verdict.reason


def test_a_slot_that_did_not_change_is_dead_whatever_it_says() -> None:
    dead = slot("node1", SlotState.HOLD, 1, 9)
    mine = slot("node2", SlotState.CLAIM, seq=3)
    assert judge(1, [dead, None, None], [dead, mine, None], (7, 3)).win


def test_a_live_idle_server_does_not_stop_us() -> None:
    idle0, idle1 = slot("node1", SlotState.IDLE, 1, 1), slot("node1", SlotState.IDLE, 1, 2)
    mine = slot("node2", SlotState.CLAIM, seq=3)
    assert judge(1, [idle0, None, None], [idle1, mine, None], (7, 3)).win


def test_a_restarted_server_counts_as_live() -> None:
    old, new = slot("node1", SlotState.CLAIM, 1, 50), slot("node1", SlotState.CLAIM, 2, 1)
    mine = slot("node2", SlotState.CLAIM, seq=3)
    assert not judge(1, [old, None, None], [new, mine, None], (7, 3)).win


@pytest.mark.parametrize(
    "own",
    [None, slot("node2", SlotState.CLAIM, incarnation=8, seq=3), slot("node2", seq=2)],
)
def test_we_never_win_unless_our_own_slot_reads_back_as_written(own) -> None:
    verdict = judge(1, [None, None, None], [None, own, None], (7, 3))
    assert not verdict.win and "own slot" in verdict.reason


# --- timing ----------------------------------------------------------------------------------


@pytest.mark.parametrize("lease, io", [(10.0, 2.0), (1.0, 0.25), (600.0, 120.0), (1.0, 0.01)])
def test_the_timing_relations_of_the_argument_hold(lease: float, io: float) -> None:
    # R1: a write starts within L - D of the last, and completes within D: one in every L
    assert dl.max_start_gap(lease, io) + io == pytest.approx(lease)
    assert dl.renew_period(lease, io) < dl.max_start_gap(lease, io)
    # R2: the reader's window is longer than L, whatever the two clocks' rates
    assert dl.window(lease) / (1 + dl.DRIFT) > lease * (1 + dl.DRIFT)
    # a winner's hold write is back within 2D + slack; a later claimer waits longer than that
    assert dl.claim_wait(io) / (1 + dl.DRIFT) > dl.hold_deadline(io) * (1 + dl.DRIFT)
    # the check's worst case covers every step
    steps = io + max(dl.window(lease), io + dl.claim_wait(io)) + 2 * io
    assert dl.check_time(lease, io) >= steps

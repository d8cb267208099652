import pytest

from actors.membership.resolution import fence_wait, majority_survives

THREE = ["a", "b", "c"]
FOUR = ["a", "b", "c", "d"]


@pytest.mark.parametrize(
    "online, me, servers, survives",
    [
        (["b"], "a", THREE, True),  # 2 of 3
        ([], "a", THREE, False),  # 1 of 3: the isolated one
        (["c"], "b", THREE, True),  # 2 of 3 without the master: still a majority
        (["b"], "a", FOUR, True),  # 2 of 4 with the master a
        (["d"], "c", FOUR, False),  # 2 of 4 without the master
        ([], "a", ["a", "b"], True),  # 2 servers: the master's half wins a split...
        ([], "b", ["a", "b"], False),  # ...and the other half stands down
    ],
)
def test_majority(online, me, servers, survives) -> None:
    assert majority_survives(online, me, servers, master=servers[0]) is survives


def test_exactly_one_side_of_any_two_way_split_survives_by_majority() -> None:
    from itertools import combinations

    for n in range(2, 8):
        servers = [f"s{i}" for i in range(n)]
        for k in range(1, n):
            for side in combinations(servers, k):
                other = [s for s in servers if s not in side]
                a = majority_survives(side[1:], side[0], servers, servers[0])
                b = majority_survives(other[1:], other[0], servers, servers[0])
                assert a != b, (side, other)  # never both (split brain), never neither


def test_fence_wait_covers_the_losers_worst_case() -> None:
    # skew 0.5 + 0.05 + 1.5; NP checks run one after another, each with its request margin;
    # the stand-down deadline and the kill margin
    assert fence_wait(0.5, 0.05, 1.5, [3.0, 0.0], 10.0) == pytest.approx(2.05 + 7.0 + 12.0)
    assert fence_wait(0.5, 0.05, 1.5, [], 10.0) == pytest.approx(2.05 + 12.0)

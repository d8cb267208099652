"""The membership view on synthetic timelines (pure)."""

from actors.membership.view import MembershipView


def kinds(events) -> list[str]:
    return [e.kind for e in events]


def view() -> MembershipView:
    return MembershipView("node1", {"node2": ["lan1", "lan2"], "node3": ["lan1"]}, settle=1.0)


def test_down_only_when_every_path_is_silent() -> None:
    v = view()
    assert kinds(v.path_changed("node2", "lan1", "normal", 0.0)) == ["server_up"]
    v.path_changed("node2", "lan2", "normal", 0.0)
    assert kinds(v.path_changed("node2", "lan1", "error", 5.0)) == ["path_lost", "one_path_left"]
    assert v.snapshot()["servers"]["node2"]["state"] == "online"
    assert kinds(v.path_changed("node2", "lan2", "error", 5.1)) == ["path_lost", "server_down"]
    assert v.snapshot()["servers"]["node2"]["state"] == "offline"


def test_back_after_a_good_beat_plus_the_settle_time() -> None:
    v = view()
    v.path_changed("node3", "lan1", "normal", 0.0)
    v.path_changed("node3", "lan1", "error", 3.0)
    assert kinds(v.path_changed("node3", "lan1", "normal", 10.0)) == ["path_restored"]
    assert kinds(v.tick(10.5)) == []  # settling
    assert kinds(v.tick(11.0)) == ["server_up"]


def test_a_flapping_path_does_not_flap_the_server() -> None:
    v = view()
    v.path_changed("node3", "lan1", "normal", 0.0)
    v.path_changed("node3", "lan1", "error", 3.0)
    v.path_changed("node3", "lan1", "normal", 3.5)
    v.path_changed("node3", "lan1", "error", 3.9)  # lost again before settling
    assert kinds(v.tick(5.0)) == []
    assert v.snapshot()["servers"]["node3"]["state"] == "offline"


def test_epoch_grows_with_every_server_change_only() -> None:
    v = MembershipView("node1", {"node2": ["lan1"]}, settle=0.0, epoch=41)
    v.path_changed("node2", "lan1", "normal", 0.0)
    assert v.epoch == 42
    v.path_changed("node2", "lan1", "caution", 1.0)  # a late beat: no server change
    assert v.epoch == 42
    v.path_changed("node2", "lan1", "error", 2.0)
    assert v.epoch == 43


def test_delay_warning_and_unknown_paths() -> None:
    v = view()
    v.path_changed("node2", "lan1", "normal", 0.0)
    assert kinds(v.path_changed("node2", "lan1", "caution", 1.0)) == ["delay_warning"]
    assert v.snapshot()["servers"]["node3"] == {
        "state": "unknown",
        "heartbeats": {"lan1": "unknown"},
        "fenced": False,
    }
    assert kinds(v.path_changed("ghost", "lan1", "error", 1.0)) == []  # not a configured peer


def test_fenced_only_while_offline_and_cleared_when_back() -> None:
    v = MembershipView("node1", {"node2": ["lan1"]}, settle=0.0)
    v.path_changed("node2", "lan1", "normal", 0.0)
    assert not v.mark_fenced("node2")  # online: nothing to fence
    v.path_changed("node2", "lan1", "error", 1.0)
    epoch = v.epoch
    assert v.mark_fenced("node2") and v.epoch == epoch + 1
    assert v.snapshot()["servers"]["node2"]["fenced"] is True
    v.path_changed("node2", "lan1", "normal", 2.0)
    assert v.snapshot()["servers"]["node2"] == {
        "state": "online",
        "heartbeats": {"lan1": "normal"},
        "fenced": False,
    }

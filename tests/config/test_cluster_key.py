import os

import pytest

from config.clusterkey import ClusterKeyError, generate_cluster_key, load_cluster_key


def test_generated_key_loads_and_is_private(tmp_path) -> None:
    path = str(tmp_path / "k")
    generate_cluster_key(path)
    assert os.stat(path).st_mode & 0o777 == 0o600
    assert len(load_cluster_key(path)) == 32


def test_an_existing_key_is_never_overwritten(tmp_path) -> None:
    path = str(tmp_path / "k")
    generate_cluster_key(path)
    before = load_cluster_key(path)
    with pytest.raises(ClusterKeyError, match="never overwritten"):
        generate_cluster_key(path)
    assert load_cluster_key(path) == before


@pytest.mark.parametrize(
    "content, mode, message",
    [
        ("ab" * 32, 0o644, "chmod 600"),
        ("ab" * 8, 0o600, "hex digits"),
        ("not hex at all" * 8, 0o600, "hex digits"),
    ],
)
def test_bad_keys_are_refused_without_showing_them(tmp_path, content, mode, message) -> None:
    path = tmp_path / "k"
    path.write_text(content)
    os.chmod(path, mode)
    with pytest.raises(ClusterKeyError, match=message) as info:
        load_cluster_key(str(path))
    assert content not in str(info.value)


def test_missing_key_says_how_to_make_one(tmp_path) -> None:
    with pytest.raises(ClusterKeyError, match="haven config keygen"):
        load_cluster_key(str(tmp_path / "absent"))


def test_heartbeats_without_a_key_file_are_refused() -> None:
    from config import check_text

    text = (
        '[cluster]\nname = "x"\n[[network]]\nname = "lan"\nsubnet = "198.18.0.0/24"\n'
        '[[server]]\nname = "a"\naddresses = { lan = "198.18.0.1" }\n'
        '[[server]]\nname = "b"\naddresses = { lan = "198.18.0.2" }\n'
        '[[heartbeat]]\nname = "hb"\ntype = "lanhb"\nnetwork = "lan"\n'
    )
    _, issues = check_text(text, "t.toml")
    assert [i.path for i in issues] == [("cluster", "key_file")]

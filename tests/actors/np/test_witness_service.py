"""The witness service and its client over real HTTP on 127.0.0.1: the lease goes to the first
asker and to nobody else until it runs out; forged, replayed and foreign requests are refused
and counted; a recorded or unsealed answer is refused by the client; a restart keeps the leases
(state file) or refuses leases for a while (no state file)."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from actors.np import witness_protocol as wp
from actors.np.witness_client import WitnessClient, WitnessError, http
from actors.np.witness_server import Witness, WitnessHTTPServer

TOKEN = wp.cluster_token(b"the cluster key of the witness tests".ljust(32))
OTHER = wp.cluster_token(b"another cluster's key".ljust(32))


class Running:
    """A witness service on an ephemeral port of 127.0.0.1, in a thread."""

    def __init__(self, witness: Witness) -> None:
        self.witness = witness
        self.server = WitnessHTTPServer(("127.0.0.1", 0), witness)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"

    def client(self, server: str, token: bytes = TOKEN) -> WitnessClient:
        return WitnessClient(self.url, token, server)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


@pytest.fixture
def serve(tmp_path) -> Iterator:
    running: list[Running] = []

    def start(state: str | None = str(tmp_path / "state.json"), max_lease=60.0, tokens=None):
        tokens = tokens or {wp.cluster_id(TOKEN): TOKEN, wp.cluster_id(OTHER): OTHER}
        running.append(Running(Witness(tokens, max_lease=max_lease, state_path=state)))
        return running[-1]

    yield start
    for r in running:
        r.stop()


def call(client: WitnessClient, op: str, duration: float = 2.0):
    return asyncio.run(client.call(op, duration))


def test_the_first_asker_gets_the_lease_and_the_others_are_refused_until_it_ends(serve) -> None:
    w = serve()
    node1, node2 = w.client("node1"), w.client("node2")
    assert call(node1, "probe").result == "ok"
    granted = call(node1, "acquire", 1.0)
    assert granted.result == "granted"
    refused = call(node2, "acquire", 1.0)
    assert refused.result == "refused" and refused.holder == "node1"
    assert "node1 holds" in refused.reason
    assert call(node1, "acquire", 1.0).result == "granted"  # the holder extends it
    assert call(w.client("x", OTHER), "acquire").result == "granted"  # another cluster's own
    time.sleep(1.1)
    assert call(node2, "acquire").result == "granted"  # run out: the next asker's
    assert w.witness.stats()["granted"] == 4


def test_a_release_frees_the_lease_only_for_its_holder(serve) -> None:
    w = serve()
    node1, node2 = w.client("node1"), w.client("node2")
    assert call(node1, "acquire", 30).result == "granted"
    assert call(node2, "release").result == "not_holder"
    assert call(node2, "acquire", 30).result == "refused"
    assert call(node1, "release").result == "released"
    assert call(node2, "acquire", 30).result == "granted"


def test_a_lease_longer_than_the_witness_grants_is_refused_and_the_probe_says_so(serve) -> None:
    w = serve(max_lease=10)
    answer = call(w.client("node1"), "probe", 20)
    assert answer.result == "refused" and "--max-lease" in answer.reason


def post(w: Running, body: bytes, mac: str | None) -> tuple[int, dict]:
    headers = {wp.MAC_HEADER: mac} if mac else {}
    status, _, data = asyncio.run(http("127.0.0.1", w.port, "POST", "/v1/lease", body, headers))
    return status, json.loads(data)


def request_body(w: Running, server="node1", op="acquire", token=TOKEN, **fields) -> bytes:
    nonce = json.loads(urllib.request.urlopen(w.url + "/v1/challenge", timeout=5).read())["nonce"]
    message = {
        "v": 1,
        "cluster": wp.cluster_id(token),
        "server": server,
        "op": op,
        "duration_ms": 5000,
        "nonce": nonce,
        "cnonce": "c" * 32,
        **fields,
    }
    return wp.encode(message)


def test_forged_replayed_and_garbage_requests_are_refused_and_counted(serve) -> None:
    w = serve()
    body = request_body(w)
    assert post(w, body, wp.seal(OTHER, "request", body)) == (403, {"error": "forged"})
    assert post(w, body, None) == (403, {"error": "forged"})
    assert post(w, body, wp.seal(TOKEN, "response", body))[0] == 403  # wrong direction
    status, answer = post(w, body, wp.seal(TOKEN, "request", body))
    assert status == 200 and answer["result"] == "granted"
    replay = post(w, body, wp.seal(TOKEN, "request", body))  # the same request again
    assert replay == (409, {"error": "stale or replayed nonce"})
    made_up = request_body(w, nonce="0" * 32)  # a nonce the witness never issued
    assert post(w, made_up, wp.seal(TOKEN, "request", made_up))[0] == 409
    unknown = request_body(w, token=b"\1" * 32)
    assert post(w, unknown, wp.seal(b"\1" * 32, "request", unknown)) == (
        403,
        {"error": "unknown cluster"},
    )
    assert post(w, b"\x00garbage", "00")[0] == 400
    bad = request_body(w, op="steal")
    assert post(w, bad, wp.seal(TOKEN, "request", bad))[0] == 400
    refused = w.witness.stats()["refused"]
    assert refused["forged"] == 3 and refused["stale or replayed nonce"] == 2
    assert refused["unknown cluster"] == 1 and refused["garbage"] == 1
    # and the witness still serves
    assert call(w.client("node1"), "acquire").result == "granted"


def test_oversized_and_lengthless_requests_are_refused(serve) -> None:
    w = serve()

    def raw(head: str) -> bytes:
        with socket.create_connection(("127.0.0.1", w.port), timeout=5) as sock:
            sock.sendall(head.encode() + b"\r\n\r\n")
            return sock.recv(4096)

    assert b" 413 " in raw("POST /v1/lease HTTP/1.1\r\nContent-Length: 99999999")
    assert b" 411 " in raw("POST /v1/lease HTTP/1.1\r\nHost: x")
    assert w.witness.stats()["refused"]["bad length"] == 2


class Impostor(BaseHTTPRequestHandler):
    """A real HTTP server that answers every lease request with a recorded answer."""

    answer: tuple[bytes, str] = (b"{}", "")

    def do_GET(self) -> None:  # noqa: N802
        self._send(json.dumps({"nonce": "a" * 32}).encode(), "")

    def do_POST(self) -> None:  # noqa: N802
        self.rfile.read(int(self.headers["Content-Length"]))
        self._send(*self.answer)

    def _send(self, body: bytes, mac: str) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        if mac:
            self.send_header(wp.MAC_HEADER, mac)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


def test_the_client_refuses_a_replayed_or_unsealed_answer(serve) -> None:
    w = serve()
    granted = None

    def record(server):
        nonlocal granted
        body = request_body(w, server)
        status, data = post(w, body, wp.seal(TOKEN, "request", body))
        granted = (wp.encode(data), wp.seal(TOKEN, "response", wp.encode(data)))

    record("node1")  # a genuine "granted", sealed by the witness, recorded on the wire
    impostor = ThreadingHTTPServer(("127.0.0.1", 0), Impostor)
    threading.Thread(target=impostor.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{impostor.server_address[1]}"
        Impostor.answer = granted
        with pytest.raises(WitnessError, match="another request"):
            call(WitnessClient(url, TOKEN, "node1"), "acquire")
        Impostor.answer = (granted[0], "00" * 32)
        with pytest.raises(WitnessError, match="not sealed"):
            call(WitnessClient(url, TOKEN, "node1"), "acquire")
    finally:
        impostor.shutdown()
        impostor.server_close()


def test_an_unreachable_witness_is_a_clear_error(serve) -> None:
    w = serve()
    w.stop()
    with pytest.raises(WitnessError, match="cannot connect"):
        call(w.client("node1"), "probe")
    w.server = WitnessHTTPServer(("127.0.0.1", 0), w.witness)  # for the fixture's stop()
    w.thread = threading.Thread(target=w.server.serve_forever, daemon=True)
    w.thread.start()


def test_a_restart_with_its_state_file_keeps_the_leases(serve, tmp_path) -> None:
    state = str(tmp_path / "state.json")
    first = serve(state=state)
    assert call(first.client("node1"), "acquire", 30).result == "granted"
    first.stop()
    again = serve(state=state)
    answer = call(again.client("node2"), "acquire", 30)
    assert answer.result == "refused" and answer.holder == "node1"


def test_after_a_reboot_a_lease_runs_its_remaining_time_again(serve, tmp_path) -> None:
    state = str(tmp_path / "state.json")
    first = serve(state=state)
    assert call(first.client("node1"), "acquire", 30).result == "granted"
    first.stop()
    with open(state) as f:
        saved = json.load(f)
    saved["boot_id"] = "another boot"
    for lease in saved["leases"].values():
        lease["expires"] = -1.0  # a clock of another boot means nothing
    with open(state, "w") as f:
        json.dump(saved, f)
    again = serve(state=state)
    assert call(again.client("node2"), "acquire", 30).holder == "node1"


def test_without_a_state_file_a_restarted_witness_refuses_leases_for_a_while(serve) -> None:
    w = serve(state=None, max_lease=5)
    answer = call(w.client("node1"), "acquire", 1)
    assert answer.result == "refused" and "restarted without its state" in answer.reason
    assert call(w.client("node1"), "probe", 1).result == "ok"  # reachable all the same


def test_an_unreadable_state_file_means_the_same_careful_restart(serve, tmp_path) -> None:
    state = tmp_path / "state.json"
    state.write_text("{not json")
    w = serve(state=str(state), max_lease=5)
    assert "restarted without its state" in call(w.client("node1"), "acquire", 1).reason


def test_a_grant_that_cannot_be_recorded_is_refused(serve, tmp_path) -> None:
    w = serve(state=str(tmp_path / "no such directory" / "state.json"))
    answer = call(w.client("node1"), "acquire", 1)
    assert answer.result == "refused" and "cannot record" in answer.reason
    assert call(w.client("node2"), "acquire", 1).result == "refused"  # nobody holds it either


def test_the_valid_time_of_a_lease_is_shorter_than_granted() -> None:
    # the client's count, even on a clock slow by the drift, ends before the witness's lease,
    # even on a clock fast by the drift
    assert wp.valid_for(10.0) / (1 - wp.DRIFT) < 10.0 / (1 + wp.DRIFT)
    assert wp.valid_for(0.01) == 0.0
    # what a server asks for lasts its hold in real time, on a witness clock fast by the drift
    assert wp.lease_duration(20.0) / (1 + wp.DRIFT) >= 20.0


def test_tokens_file_lines() -> None:
    line = wp.token_line(TOKEN, 'my "cluster"')
    tokens = wp.parse_tokens(f"# witness tokens\n\n{line}\n{OTHER.hex().upper()}\n")
    assert tokens == {wp.cluster_id(TOKEN): TOKEN, wp.cluster_id(OTHER): OTHER}
    with pytest.raises(wp.ProtocolError, match="line 2"):
        wp.parse_tokens(f"{TOKEN.hex()}\nnot a token\n")

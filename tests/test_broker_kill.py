"""Kill -9 of the Mosquitto broker mid-stream (shipped configuration: persistence on, QoS 1, the service's
persistent session, PUBACK after the commit, the service's receipts to the node): every batch is stored, none
twice."""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))

EXE = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
pytestmark = pytest.mark.skipif(not Path(EXE).exists() or shutil.which("mosquitto_passwd") is None,
                                reason="needs the mosquitto Debian package")


def test_broker_killed_twice_mid_stream_loses_nothing_and_stores_nothing_twice():
    from bench_broker_kill import run

    root = Path(tempfile.mkdtemp(prefix="skytrace-broker-kill-"))
    root.chmod(0o755)  # the broker runs as its own user and must reach its files (pytest's tmp_path is private)
    try:
        res = run(root, batches=400, kills=2, rate=100.0)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    assert res["broker_kills"] == 2
    assert res["broker_acked"] == 400, res  # the node's client retransmitted what the dead broker had not acked
    assert res["stored_twice"] == 0, res
    # Mosquitto acknowledges a QoS 1 PUBLISH before its next persistence snapshot, so a kill can lose a message the
    # node thinks delivered (measured without receipts: 2 of 6,000 over 10 kills, docs/security.md); the service's
    # receipts make the node resend it: nothing lost, nothing stored twice, nothing left unconfirmed
    assert res["lost_acked"] == 0, res
    assert res["node_unconfirmed_at_end"] == 0 and res["node_receipts"]["given_up"] == 0, res
    assert res["rows_stored"] == 400 * res["reports_per_batch"]
    assert not res["traceback_in_service_log"]


def test_a_broker_that_forgets_everything_loses_nothing_thanks_to_the_receipts():
    """The worst case: a broker without persistence, killed -9, forgets every message it had acknowledged and not
    yet delivered; the node, holding each batch until the service's receipt, resends them."""
    from bench_broker_kill import run

    root = Path(tempfile.mkdtemp(prefix="skytrace-broker-kill-"))
    root.chmod(0o755)
    try:
        res = run(root, batches=300, kills=1, rate=150.0, persistence=False, quiet_s=5.0)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    assert res["broker_kills"] == 1 and res["node_receipts"]["resent"] > 0, res  # the kill did lose messages
    assert res["lost_acked"] == 0 and res["stored_twice"] == 0, res
    assert res["node_unconfirmed_at_end"] == 0, res

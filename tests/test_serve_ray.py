"""`effnet serve --ray`: a local Ray cluster of two nodes (one CPU each) on this machine (issue 17, section 2).

Two replicas land on different nodes and answer like the one-process server; killing one node's
replica leaves requests succeeding. One module-scoped cluster keeps this to about a minute.
"""

from __future__ import annotations

import os

import pytest

ray = pytest.importorskip("ray")
pytest.importorskip("ray.serve")

from _serve_utils import Client, photos  # noqa: E402


@pytest.fixture(scope="module")
def cluster():
    from ray import serve
    from ray.cluster_utils import Cluster

    from effnet.serve.ray_app import _free_port, application, start

    # Ray Serve's controller gives its HTTP proxy 5 s to answer a ready check and 10 s a health check, then
    # kills it; on a saturated machine (CI with a CPU burner beside it) that killed the proxy before it started.
    # Ray's processes read these at start and inherit them from here (the raylets are started below).
    os.environ.setdefault("RAY_SERVE_PROXY_READY_CHECK_TIMEOUT_S", "120")
    os.environ.setdefault("RAY_SERVE_PROXY_HEALTH_CHECK_TIMEOUT_S", "120")
    c = None
    for attempt in range(2):  # Ray gives a raylet 30 s to register: on a saturated machine, one more try
        try:
            c = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
            c.add_node(num_cpus=1)
            break
        except Exception:
            if c is not None:
                c.shutdown()
            if attempt:
                raise
    ray.init(address=c.address, log_to_driver=False)
    c.wait_for_nodes()
    port = _free_port("127.0.0.1")
    # Ray Serve waits a fixed 60 s for its HTTP proxy actor, then kills it; on a saturated machine (CI with a
    # CPU burner beside it) starting that actor's process took longer. The module global is read at call time.
    import ray.serve._private.api as serve_api

    proxy_timeout = serve_api.HTTP_PROXY_TIMEOUT
    serve_api.HTTP_PROXY_TIMEOUT = max(proxy_timeout, 300)
    try:
        start(application("lite0", "lite0", replicas=2, threads=1), "127.0.0.1", port)
        yield Client(port, timeout=60)
    finally:
        serve_api.HTTP_PROXY_TIMEOUT = proxy_timeout
        serve.shutdown()
        ray.shutdown()
        c.shutdown()


def replicas() -> list[dict]:
    """The live replica actors as the GCS lists them: Name, RayNamespace, Address.NodeID (no dashboard needed)."""
    actors = ray.state.actors(actor_state_name="ALIVE").values()
    return [a for a in actors if "EffnetReplica" in a.get("ActorClassName", "") + a.get("Name", "")]


def test_two_replicas_on_two_nodes_answer_correctly(cluster):
    alive = replicas()
    assert len(alive) == 2 and len({a["Address"]["NodeID"] for a in alive}) == 2, alive
    status, _, body = cluster.predict(list(photos().items())[:2])
    assert status == 200, body
    assert "cat" in body["predictions"][0][0]["label"] and body["predictions"][1][0]["label"] == "espresso"
    status, meta = cluster.json("GET", "/v2/models/lite0")
    assert status == 200 and len(meta["parameters"]["classes"]) == 1000


def test_killing_one_replica_leaves_requests_succeeding(cluster):
    coffee = [("coffee.png", photos()["coffee.png"])]
    victim = replicas()[0]
    ray.kill(ray.get_actor(victim["Name"], namespace=victim.get("RayNamespace") or "serve"), no_restart=True)
    statuses = []
    for _ in range(8):  # each request has the client's own hang guard; no deadline on the eight together
        status, _, body = cluster.predict(coffee)
        statuses.append(status)
        assert status != 200 or body["predictions"][0][0]["label"] == "espresso"
    assert statuses == [200] * 8, statuses

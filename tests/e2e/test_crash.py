"""kill -9 of ``kubeling up`` in the middle of a write stream loses no acknowledged write.

Eight writer threads use the official Python client against a real ``kubeling up``: each
creates ConfigMaps and bumps its own counter ConfigMap with a resourceVersion precondition,
recording every write the server acknowledged. Once enough writes are acknowledged the server
gets SIGKILL (no shutdown path runs), then a new ``kubeling up`` opens the same data dir. Every
acknowledged create must be there with its data, and every counter must hold at least the last
value acknowledged for it (one more is allowed: a write may commit after the client lost its
connection, never the other way round).
"""

from __future__ import annotations

import pathlib
import signal
import threading
from collections.abc import Callable

import pytest
from kubernetes import client as k8s
from kubernetes import config as k8s_config

from tests.e2e.conftest import Kubeling, start_kubeling, stop_kubeling

pytestmark = pytest.mark.e2e

WRITERS = 8
KILL_AFTER_ACKS = 400
NAMESPACE = "default"


def _api(k: Kubeling) -> k8s.CoreV1Api:
    configuration = k8s.Configuration()
    k8s_config.load_kube_config(config_file=str(k.kubeconfig), client_configuration=configuration)
    configuration.retries = 0
    return k8s.CoreV1Api(k8s.ApiClient(configuration))


def _writer(
    api: k8s.CoreV1Api,
    t: int,
    *,
    acked_creates: dict[str, str],
    acked_counters: dict[str, int],
    lock: threading.Lock,
    on_ack: Callable[[], None],
    stop: threading.Event,
) -> None:
    counter = f"counter-{t}"
    try:
        api.create_namespaced_config_map(
            NAMESPACE, {"metadata": {"name": counter}, "data": {"n": "0"}}
        )
        with lock:
            acked_counters[counter] = 0
        i = 0
        while not stop.is_set():
            name, value = f"w{t}-{i}", f"value {t}-{i}"
            api.create_namespaced_config_map(
                NAMESPACE, {"metadata": {"name": name}, "data": {"v": value}}
            )
            with lock:
                acked_creates[name] = value
            on_ack()
            current = api.read_namespaced_config_map(counter, NAMESPACE)
            n = int(current.data["n"]) + 1
            current.data["n"] = str(n)
            api.replace_namespaced_config_map(counter, NAMESPACE, current)
            with lock:
                acked_counters[counter] = n
            on_ack()
            i += 1
    except Exception:  # the server is gone (killed): every writer ends here
        return


def test_kill_9_during_writes_loses_no_acknowledged_write(tmp_path: pathlib.Path) -> None:
    data, cache = tmp_path / "data", tmp_path / "cache"
    cache.mkdir()
    first = start_kubeling(data, cache, "--runtime=simulated")
    acked_creates: dict[str, str] = {}
    acked_counters: dict[str, int] = {}
    lock = threading.Lock()
    stop = threading.Event()
    enough = threading.Event()
    count = [0]

    def on_ack() -> None:
        with lock:
            count[0] += 1
            if count[0] >= KILL_AFTER_ACKS:
                enough.set()

    threads = [
        threading.Thread(
            target=_writer,
            args=(_api(first), t),
            kwargs={
                "acked_creates": acked_creates,
                "acked_counters": acked_counters,
                "lock": lock,
                "on_ack": on_ack,
                "stop": stop,
            },
            daemon=True,
        )
        for t in range(WRITERS)
    ]
    for thread in threads:
        thread.start()
    try:
        assert enough.wait(120), f"only {count[0]} writes acknowledged before the deadline"
        first.proc.send_signal(signal.SIGKILL)
        first.proc.wait(30)
    finally:
        stop.set()
        if first.proc.poll() is None:
            first.proc.kill()
            first.proc.wait(30)
        for thread in threads:
            thread.join(60)
    with lock:
        creates = dict(acked_creates)
        counters = dict(acked_counters)
    assert len(creates) >= KILL_AFTER_ACKS // 2 - WRITERS

    second = start_kubeling(data, cache, "--runtime=simulated")
    try:
        api = _api(second)
        stored = {
            cm.metadata.name: cm.data or {}
            for cm in api.list_namespaced_config_map(NAMESPACE).items
        }
        missing = [name for name in creates if name not in stored]
        assert not missing, f"{len(missing)} acknowledged creates lost, e.g. {missing[:5]}"
        wrong = [name for name, value in creates.items() if stored[name].get("v") != value]
        assert not wrong, f"acknowledged creates with other data: {wrong[:5]}"
        for name, n in counters.items():
            got = int(stored[name]["n"])
            assert n <= got <= n + 1, f"{name}: acknowledged {n}, stored {got}"
    finally:
        assert stop_kubeling(second) == 0

"""The external provisioner protocol, proved with a provisioner written with the official
``kubernetes`` Python client against a real ``kubeling up``.

The provisioner here is the smallest one the protocol allows (what
sig-storage-lib-external-provisioner does, minus its options): it watches claims, takes
those whose ``volume.kubernetes.io/storage-provisioner`` annotation names it and that have
no volume yet, creates a PersistentVolume ``pvc-<claim uid>`` pre-bound to the claim with
``pv.kubernetes.io/provisioned-by``, and deletes the volumes it made once they are
``Released`` with reclaim policy ``Delete``. Its nfs volume is never mounted (no pod uses
it), so no traffic leaves loopback.
"""

from __future__ import annotations

import pathlib
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException

from tests.e2e.conftest import Kubeling, start_kubeling, stop_kubeling

pytestmark = pytest.mark.e2e

NAME = "example.com/nfs"
ANN_PROVISIONER = "volume.kubernetes.io/storage-provisioner"
ANN_BETA_PROVISIONER = "volume.beta.kubernetes.io/storage-provisioner"
DEADLINE = 30.0


@pytest.fixture
def kubeling(tmp_path: pathlib.Path) -> Iterator[Kubeling]:
    cache = tmp_path / "kube-cache"
    cache.mkdir()
    k = start_kubeling(tmp_path / "data", cache)
    try:
        yield k
    finally:
        code = stop_kubeling(k)
        assert code == 0, f"kubeling up exited {code}:\n" + "\n".join(k.output)


class ExampleProvisioner:
    """Runs in a thread until ``stop()``; records what it did."""

    def __init__(self, api_client: client.ApiClient) -> None:
        self.core = client.CoreV1Api(api_client)
        self.storage = client.StorageV1Api(api_client)
        self.provisioned: list[str] = []
        self.deleted: list[str] = []
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._loop, args=(self._claims,), daemon=True),
            threading.Thread(target=self._loop, args=(self._volumes,), daemon=True),
        ]

    def start(self) -> None:
        for t in self._threads:
            t.start()

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(10)

    def _loop(self, body: Callable[[], None]) -> None:
        while not self._stop.is_set():
            try:
                body()
            except Exception as e:  # a provisioner keeps going; the test reads errors
                self.errors.append(repr(e))
                self._stop.wait(0.2)

    def _claims(self) -> None:
        w = watch.Watch()
        for event in w.stream(
            self.core.list_persistent_volume_claim_for_all_namespaces, timeout_seconds=2
        ):
            if self._stop.is_set():
                w.stop()
                return
            if event["type"] in ("ADDED", "MODIFIED"):
                self._maybe_provision(event["object"])

    def _maybe_provision(self, claim: client.V1PersistentVolumeClaim) -> None:
        ann = claim.metadata.annotations or {}
        if ann.get(ANN_PROVISIONER, ann.get(ANN_BETA_PROVISIONER)) != NAME:
            return
        if claim.spec.volume_name:
            return
        pv_name = f"pvc-{claim.metadata.uid}"
        if pv_name in self.provisioned:
            return
        sc = self.storage.read_storage_class(claim.spec.storage_class_name)
        key = f"{claim.metadata.namespace}/{claim.metadata.name}"
        self._event(
            claim, "Provisioning", f'External provisioner is provisioning volume for claim "{key}"'
        )
        pv = client.V1PersistentVolume(
            metadata=client.V1ObjectMeta(
                name=pv_name, annotations={"pv.kubernetes.io/provisioned-by": NAME}
            ),
            spec=client.V1PersistentVolumeSpec(
                capacity={"storage": claim.spec.resources.requests["storage"]},
                access_modes=claim.spec.access_modes,
                persistent_volume_reclaim_policy=sc.reclaim_policy,
                storage_class_name=claim.spec.storage_class_name,
                mount_options=sc.mount_options,
                nfs=client.V1NFSVolumeSource(server="127.0.0.1", path=f"/exports/{pv_name}"),
                claim_ref=client.V1ObjectReference(
                    kind="PersistentVolumeClaim",
                    api_version="v1",
                    namespace=claim.metadata.namespace,
                    name=claim.metadata.name,
                    uid=claim.metadata.uid,
                    resource_version=claim.metadata.resource_version,
                ),
            ),
        )
        try:
            self.core.create_persistent_volume(pv)
        except ApiException as e:
            if e.status != 409:
                raise
        self.provisioned.append(pv_name)
        self._event(claim, "ProvisioningSucceeded", f"Successfully provisioned volume {pv_name}")

    def _volumes(self) -> None:
        w = watch.Watch()
        for event in w.stream(self.core.list_persistent_volume, timeout_seconds=2):
            if self._stop.is_set():
                w.stop()
                return
            pv = event["object"]
            if event["type"] == "DELETED" or pv.metadata.deletion_timestamp:
                continue
            if (pv.metadata.annotations or {}).get("pv.kubernetes.io/provisioned-by") != NAME:
                continue
            if (
                pv.status.phase == "Released"
                and pv.spec.persistent_volume_reclaim_policy == "Delete"
            ):
                # the backing share directory would be removed here
                try:
                    self.core.delete_persistent_volume(pv.metadata.name)
                except ApiException as e:
                    if e.status != 404:
                        raise
                self.deleted.append(pv.metadata.name)

    def _event(self, claim: client.V1PersistentVolumeClaim, reason: str, message: str) -> None:
        self.core.create_namespaced_event(
            claim.metadata.namespace,
            client.CoreV1Event(
                # client-go's naming: "<object>.<nanoseconds in hex>"
                metadata=client.V1ObjectMeta(
                    name=f"{claim.metadata.name}.{time.time_ns():x}",
                    namespace=claim.metadata.namespace,
                ),
                involved_object=client.V1ObjectReference(
                    kind="PersistentVolumeClaim",
                    api_version="v1",
                    namespace=claim.metadata.namespace,
                    name=claim.metadata.name,
                    uid=claim.metadata.uid,
                ),
                reason=reason,
                message=message,
                type="Normal",
                source=client.V1EventSource(component=f"{NAME}_test"),
            ),
        )


def poll(
    predicate: Callable[[], Any], what: str | Callable[[], str], timeout: float = DEADLINE
) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what() if callable(what) else what}")
        time.sleep(0.1)


def test_external_provisioner_protocol_with_the_official_client(kubeling: Kubeling) -> None:
    api_client = config.new_client_from_config(config_file=str(kubeling.kubeconfig))
    core = client.CoreV1Api(api_client)
    storage = client.StorageV1Api(api_client)
    provisioner = ExampleProvisioner(api_client)
    provisioner.start()
    try:
        storage.create_storage_class(
            client.V1StorageClass(
                metadata=client.V1ObjectMeta(name="nfs"),
                provisioner=NAME,
                reclaim_policy="Delete",
                mount_options=["nfsvers=4.1"],
            )
        )
        core.create_namespaced_persistent_volume_claim(
            "default",
            client.V1PersistentVolumeClaim(
                metadata=client.V1ObjectMeta(name="shared"),
                spec=client.V1PersistentVolumeClaimSpec(
                    storage_class_name="nfs",
                    access_modes=["ReadWriteMany"],
                    resources=client.V1VolumeResourceRequirements(requests={"storage": "1Gi"}),
                ),
            ),
        )

        def bound() -> client.V1PersistentVolumeClaim | None:
            c = core.read_namespaced_persistent_volume_claim("shared", "default")
            return c if c.status.phase == "Bound" else None

        claim = poll(
            bound,
            lambda: (
                f"claim Bound (provisioned {provisioner.provisioned}, "
                f"errors {provisioner.errors[:3]})"
            ),
        )
        pv_name = f"pvc-{claim.metadata.uid}"
        assert claim.spec.volume_name == pv_name
        assert provisioner.provisioned == [pv_name]
        ann = claim.metadata.annotations
        assert ann[ANN_PROVISIONER] == NAME
        assert ann[ANN_BETA_PROVISIONER] == NAME
        assert ann["pv.kubernetes.io/bind-completed"] == "yes"
        assert claim.status.capacity == {"storage": "1Gi"}
        assert claim.status.access_modes == ["ReadWriteMany"]
        pv = core.read_persistent_volume(pv_name)
        assert pv.status.phase == "Bound"
        assert pv.spec.mount_options == ["nfsvers=4.1"]

        def event_reasons() -> dict[str, Any]:
            events = core.list_namespaced_event(
                "default", field_selector="involvedObject.name=shared"
            ).items
            return {e.reason: e for e in events}

        events = poll(
            lambda: (lambda r: r if "ExternalProvisioning" in r else None)(event_reasons()),
            "ExternalProvisioning event",
        )
        external = events["ExternalProvisioning"]
        assert external.type == "Normal"
        assert external.source.component == "persistentvolume-controller"
        assert external.message == (
            "Waiting for a volume to be created either by the external provisioner "
            "'example.com/nfs' or manually by the system administrator. If volume creation is "
            "delayed, please verify that the provisioner is running and correctly registered."
        )
        assert {"Provisioning", "ProvisioningSucceeded"} <= set(events)

        # Deletion: the binder leaves the Released volume to its provisioner, which deletes it.
        core.delete_namespaced_persistent_volume_claim("shared", "default")

        def volume_gone() -> bool:
            try:
                core.read_persistent_volume(pv_name)
            except ApiException as e:
                return e.status == 404
            return False

        poll(volume_gone, "volume deleted by the external provisioner")
        assert provisioner.deleted[:1] == [pv_name]
        assert provisioner.errors == []
    finally:
        provisioner.stop()
        api_client.close()

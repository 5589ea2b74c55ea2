"""The agent's subPath and claim failures read as upstream's kubelet writes them."""

from __future__ import annotations

from pathlib import Path

from kubeling.machinery.resources import CONFIGMAPS, PERSISTENTVOLUMECLAIMS
from kubeling.machinery.types import Obj
from tests.agent.test_kubelet import Env, env, sleeper  # noqa: F401 - the fixture
from tests.helpers.waiting import wait_until


async def test_subpath_of_a_missing_config_map_key_runs_with_an_empty_directory(
    env: Env,  # noqa: F811
) -> None:
    await env.client.create(
        CONFIGMAPS, {"metadata": {"name": "app"}, "data": {"a": "1"}}, namespace="default"
    )
    c = sleeper(volumeMounts=[{"name": "cm", "mountPath": "/etc/b", "subPath": "b"}])
    created = await env.create_pod(
        "cm", [c], volumes=[{"name": "cm", "configMap": {"name": "app"}}]
    )
    await env.wait_phase("cm", "Running")
    copy = env.pod_dir(created["metadata"]["uid"]) / "volume-subpaths" / "cm" / "c" / "0"
    assert copy.is_dir() and list(copy.iterdir()) == []


async def test_subpath_that_cannot_be_created_is_create_container_config_error(
    env: Env,  # noqa: F811
    tmp_path: Path,
) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "file").write_text("in the way")
    c = sleeper(volumeMounts=[{"name": "data", "mountPath": "/data", "subPath": "file/new"}])
    volumes = [{"name": "data", "hostPath": {"path": str(shared), "type": "Directory"}}]
    await env.create_pod("mk", [c], volumes=volumes)
    text = 'failed to create subPath directory for volumeMount "data" of container "c"'

    async def waiting() -> Obj | None:
        state = (await env.container("mk")).get("state") or {}
        return state.get("waiting") if (state.get("waiting") or {}).get("message") else None

    assert await wait_until(waiting) == {"reason": "CreateContainerConfigError", "message": text}
    await env.wait_event("mk", "Failed", f"Error: {text}")


async def test_pod_of_an_unbound_claim_fails_to_process_the_volume(
    env: Env,  # noqa: F811
) -> None:
    await env.client.create(
        PERSISTENTVOLUMECLAIMS,
        {
            "metadata": {"name": "data"},
            "spec": {
                "accessModes": ["ReadWriteOnce"],
                "resources": {"requests": {"storage": "1Gi"}},
                "storageClassName": "nothing-provisions-this",
            },
        },
        namespace="default",
    )
    c = sleeper(volumeMounts=[{"name": "data", "mountPath": "/data"}])
    await env.create_pod(
        "claim", [c], volumes=[{"name": "data", "persistentVolumeClaim": {"claimName": "data"}}]
    )
    kind, _reason, message = await env.wait_event("claim", "FailedMount")
    assert kind == "Warning"
    assert message == (
        "Unable to attach or mount volumes: unmounted volumes=[data], unattached volumes=[], "
        "failed to process volumes=[data]: error processing PVC default/data: PVC is not bound"
    )
    assert await env.phase("claim") == "Pending"


async def test_pod_of_a_missing_claim_says_the_claim_was_not_found(
    env: Env,  # noqa: F811
) -> None:
    c = sleeper(volumeMounts=[{"name": "data", "mountPath": "/data"}])
    await env.create_pod(
        "nofetch", [c], volumes=[{"name": "data", "persistentVolumeClaim": {"claimName": "gone"}}]
    )
    _kind, _reason, message = await env.wait_event("nofetch", "FailedMount")
    assert message.endswith(
        "error processing PVC default/gone: failed to fetch PVC from API server: "
        'persistentvolumeclaims "gone" not found'
    )
    assert await env.phase("nofetch") == "Pending"


async def test_pod_of_a_claim_being_deleted_does_not_start(
    env: Env,  # noqa: F811
) -> None:
    await env.client.create(
        PERSISTENTVOLUMECLAIMS,
        {
            "metadata": {"name": "leaving"},
            "spec": {
                "accessModes": ["ReadWriteOnce"],
                "resources": {"requests": {"storage": "1Gi"}},
            },
        },
        namespace="default",
    )
    # No protection controller runs here: the pvc-protection finalizer holds the claim.
    await env.client.delete(PERSISTENTVOLUMECLAIMS, name="leaving", namespace="default")
    c = sleeper(volumeMounts=[{"name": "data", "mountPath": "/data"}])
    await env.create_pod(
        "late", [c], volumes=[{"name": "data", "persistentVolumeClaim": {"claimName": "leaving"}}]
    )
    # The agent's claim informer may see the deletion a moment after the pod.
    _kind, _reason, message = await env.wait_event("late", "FailedMount", "being deleted")
    assert message.endswith("error processing PVC default/leaving: PVC is being deleted")
    assert await env.phase("late") == "Pending"

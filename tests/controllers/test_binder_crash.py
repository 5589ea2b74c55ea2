"""A binder that dies between any two of its writes leaves a state the next sync completes.

The bind is four writes (volume claimRef, volume status, claim volumeName and annotations,
claim status). Each test lets the first ``n`` writes through, then "crashes" (the client
raises before the next write), and a fresh binder, with nothing but what the API holds,
resumes: first from the claim's side, then from the volume's side.
"""

from __future__ import annotations

from typing import Any

import pytest

from kubeling.controllers.volume.binder import COMPONENT, PersistentVolumeBinder
from kubeling.controllers.volume.index import ANN_BIND_COMPLETED, ANN_BOUND_BY_CONTROLLER
from kubeling.machinery.types import Obj
from tests.controllers.conftest import Api, BinderHarness, make_pv, make_pvc, ref_to


class Crash(Exception):
    pass


class CrashingClient:
    """Passes reads through; lets ``writes`` writes through, then raises ``Crash``."""

    def __init__(self, inner: Any, *, writes: int) -> None:
        self._inner = inner
        self.allowed = writes
        self.done: list[str] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def _write(self, what: str) -> None:
        if len(self.done) >= self.allowed:
            raise Crash(f"crashed before write {len(self.done) + 1} ({what})")
        self.done.append(what)

    async def update(self, resource: Any, obj: Obj, **kwargs: Any) -> Obj:
        self._write(f"update {resource.plural}/{kwargs.get('subresource', '')}")
        return await self._inner.update(resource, obj, **kwargs)

    async def create(self, resource: Any, obj: Obj, **kwargs: Any) -> Obj:
        if resource.plural == "events":
            return await self._inner.create(resource, obj, **kwargs)
        self._write(f"create {resource.plural}")
        return await self._inner.create(resource, obj, **kwargs)

    async def delete(self, resource: Any, **kwargs: Any) -> Obj:
        self._write(f"delete {resource.plural}")
        return await self._inner.delete(resource, **kwargs)


def fresh_harness(api: Api) -> BinderHarness:
    h = BinderHarness(api)
    h.binder = PersistentVolumeBinder(
        client=api.client, recorder=api.recorder(COMPONENT), resync_period=0
    )
    return h


def assert_fully_bound(volume: Obj, claim: Obj, *, controller_bound: bool = True) -> None:
    assert volume["status"]["phase"] == "Bound"
    assert claim["status"]["phase"] == "Bound"
    assert volume["spec"]["claimRef"]["uid"] == claim["metadata"]["uid"]
    assert claim["spec"]["volumeName"] == volume["metadata"]["name"]
    assert claim["metadata"]["annotations"][ANN_BIND_COMPLETED] == "yes"
    assert claim["status"]["capacity"] == {"storage": "2Gi"}
    assert claim["status"]["accessModes"] == ["ReadWriteOnce"]
    if controller_bound:
        assert volume["metadata"]["annotations"][ANN_BOUND_BY_CONTROLLER] == "yes"
        assert claim["metadata"]["annotations"][ANN_BOUND_BY_CONTROLLER] == "yes"


@pytest.mark.parametrize("writes", [0, 1, 2, 3])
@pytest.mark.parametrize("resume", ["claim", "volume"])
async def test_bind_crash_after_each_write_is_completed_by_next_sync(
    api: Api, writes: int, resume: str
) -> None:
    h = BinderHarness(api)
    await h.volume(make_pv("data-pv", "2Gi"))
    await h.claim(make_pvc("data", "1Gi"))
    crashing = CrashingClient(api.client, writes=writes)
    h.binder.client = crashing
    with pytest.raises(Crash):
        await h.sync_claim("data")
    assert len(crashing.done) == writes
    after = fresh_harness(api)
    if resume == "volume":
        # the volume's sync only queues the claim (or has nothing to do); the claim's
        # sync that follows completes the bind
        await after.sync_volume("data-pv")
    await after.sync_claim("data")
    assert_fully_bound(await after.get_volume("data-pv"), await after.get_claim("data"))


async def test_bind_writes_in_upstream_order(api: Api) -> None:
    h = BinderHarness(api)
    await h.volume(make_pv("data-pv", "2Gi"))
    await h.claim(make_pvc("data", "1Gi"))
    recording = CrashingClient(api.client, writes=10)
    h.binder.client = recording
    await h.sync_claim("data")
    assert recording.done == [
        "update persistentvolumes/",
        "update persistentvolumes/status",
        "update persistentvolumeclaims/",
        "update persistentvolumeclaims/status",
    ]


@pytest.mark.parametrize("writes", [0, 1, 2, 3])
async def test_prebound_bind_crash_keeps_user_binding(api: Api, writes: int) -> None:
    """A user reservation survives the crash: no bound-by-controller on either side."""
    h = BinderHarness(api)
    claim = await h.claim(make_pvc("data", "1Gi", volume_name="data-pv"))
    await h.volume(make_pv("data-pv", "2Gi", claim_ref=ref_to(claim, uid=False)))
    h.binder.client = CrashingClient(api.client, writes=writes)
    with pytest.raises(Crash):
        await h.sync_claim("data")
    after = fresh_harness(api)
    await after.sync_claim("data")
    volume, claim = await after.get_volume("data-pv"), await after.get_claim("data")
    assert_fully_bound(volume, claim, controller_bound=False)
    assert ANN_BOUND_BY_CONTROLLER not in (volume["metadata"].get("annotations") or {})
    assert ANN_BOUND_BY_CONTROLLER not in claim["metadata"]["annotations"]

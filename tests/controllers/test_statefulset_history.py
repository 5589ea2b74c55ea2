"""ControllerRevision helpers (``controllers.history``) used by the StatefulSet controller."""

from __future__ import annotations

import pytest

from kubeling.controllers import history
from kubeling.controllers.statefulset import apply_revision, new_revision, revision_data
from kubeling.machinery import objects as o
from kubeling.machinery.resources import CONTROLLERREVISIONS, STATEFULSETS
from tests.controllers.conftest import Api
from tests.controllers.test_statefulset import NS, make_sts


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        pytest.param(b"", 0x811C9DC5, id="offset-basis"),
        pytest.param(b"a", 0x050C5D7E, id="fnv1-not-fnv1a"),
        pytest.param(b"foobar", 0x31F0B262, id="foobar"),
    ],
)
def test_fnv32_matches_go_hash_fnv_new32(data: bytes, expected: int) -> None:
    assert history.fnv32(data) == expected


def test_safe_encode_uses_the_vowel_free_alphabet() -> None:
    assert history.safe_encode("0123456789") == "456789bcdf"


def test_go_json_sorts_keys_and_escapes_html() -> None:
    assert history.go_json({"b": "<&>", "a": [1, {"d": None, "c": True}]}) == (
        b'{"a":[1,{"c":true,"d":null}],"b":"\\u003c\\u0026\\u003e"}'
    )


def test_revision_hash_depends_on_data_and_collision_count() -> None:
    data = revision_data(make_sts())
    same = history.hash_revision(o.deep_copy(data), 0)
    assert history.hash_revision(data, 0) == same
    assert history.hash_revision(data, 1) != same
    assert history.hash_revision(revision_data(make_sts(image="busybox:1.37")), 0) != same
    assert set(same) <= set("bcdfghjklmnpqrstvwxz2456789")


def test_revision_name_cuts_long_prefixes() -> None:
    assert history.revision_name("x" * 300, "abc") == "x" * 223 + "-abc"


def test_new_revision_round_trips_the_template() -> None:
    sts = make_sts()
    sts["metadata"]["uid"] = "u1"
    sts["metadata"]["annotations"] = {"note": "kept"}
    rev = new_revision(sts, number=4, collision_count=0)
    assert rev["revision"] == 4
    assert rev["metadata"]["annotations"] == {"note": "kept"}
    assert rev["metadata"]["labels"]["app"] == "web"
    assert rev["metadata"]["ownerReferences"][0]["uid"] == "u1"
    changed = make_sts(image="busybox:1.37")
    restored = apply_revision(changed, rev)
    assert restored["spec"]["template"] == sts["spec"]["template"]
    assert restored["spec"]["replicas"] == changed["spec"]["replicas"]


def test_sort_and_equal_revisions() -> None:
    a = {"metadata": {"name": "b"}, "revision": 2, "data": {"x": 1}}
    b = {"metadata": {"name": "a"}, "revision": 2, "data": {"x": 2}}
    c = {"metadata": {"name": "c"}, "revision": 1, "data": {"x": 1}}
    assert [o.name(r) for r in history.sort_revisions([a, b, c])] == ["c", "a", "b"]
    assert history.next_revision(history.sort_revisions([a, b, c])) == 3
    assert history.next_revision([]) == 1
    assert history.find_equal_revisions([a, b, c], {"data": {"x": 1}}) == [a, c]


async def test_create_revision_bumps_collision_count_on_name_clash(api: Api) -> None:
    sts = await api.client.create(STATEFULSETS, make_sts())
    sts.setdefault("kind", "StatefulSet")
    sts.setdefault("apiVersion", "apps/v1")
    wanted = new_revision(sts, number=1, collision_count=0)
    squatter = o.deep_copy(wanted)
    squatter["data"] = {"spec": {"template": {"$patch": "replace", "metadata": {}}}}
    await api.client.create(CONTROLLERREVISIONS, squatter, namespace=NS)

    created, count = await history.create_controller_revision(
        api.client, sts, revision=wanted, collision_count=0
    )
    assert count == 1
    assert o.name(created) == history.revision_name("web", history.hash_revision(wanted["data"], 1))
    assert created["data"] == wanted["data"]

    again, count = await history.create_controller_revision(
        api.client, sts, revision=wanted, collision_count=1
    )
    assert (o.uid(again), count) == (o.uid(created), 1), "an equal revision is reused"

    renumbered = await history.update_revision_number(api.client, created, 7)
    assert renumbered["revision"] == 7

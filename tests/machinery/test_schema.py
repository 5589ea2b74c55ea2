"""The schema walker over upstream's v1.32 definitions."""

from __future__ import annotations

from kubeling.machinery import resources, schema
from kubeling.machinery.types import GroupVersionKind

PVC = GroupVersionKind(group="", version="v1", kind="PersistentVolumeClaim")
STS = GroupVersionKind(group="apps", version="v1", kind="StatefulSet")


def test_for_kind_steps_through_fields_lists_and_maps() -> None:
    root = schema.for_kind(PVC)
    assert root is not None and root.ref == "io.k8s.api.core.v1.PersistentVolumeClaim"
    spec = root.field("spec")
    assert spec is not None
    resources_node = spec.field("resources")
    assert resources_node is not None and resources_node.is_object
    assert resources_node.field("request") is None  # the classic typo: unknown
    requests = resources_node.field("requests")
    assert requests is not None and requests.is_map
    storage = requests.values()
    assert storage is not None and storage.is_quantity
    access = spec.field("accessModes")
    assert access is not None and access.is_list and access.list_type == "atomic"


def test_patch_and_list_metadata_comes_from_the_referencing_property() -> None:
    root = schema.for_kind(STS)
    assert root is not None
    pod_spec = root.field("spec").field("template").field("spec")  # type: ignore[union-attr]
    assert pod_spec is not None
    containers = pod_spec.field("containers")
    assert containers is not None
    assert containers.patch_strategy == frozenset({"merge"})
    assert containers.patch_merge_key == "name"
    assert containers.list_type == "map"
    assert containers.list_map_keys == ("name",)
    item = containers.items()
    assert item is not None and item.ref == "io.k8s.api.core.v1.Container"
    port = item.field("ports").items().field("targetPort")  # type: ignore[union-attr]
    assert port is None
    probe_port = item.field("livenessProbe").field("httpGet").field("port")  # type: ignore[union-attr]
    assert probe_port is not None and probe_port.is_int_or_string


def test_property_names_is_a_cached_set() -> None:
    root = schema.for_kind(PVC)
    assert root is not None
    names = root.property_names
    assert names == frozenset({"apiVersion", "kind", "metadata", "spec", "status"})
    assert root.property_names is names


def test_free_form_nodes() -> None:
    meta = schema.for_definition("io.k8s.apimachinery.pkg.apis.meta.v1.ManagedFieldsEntry")
    fields_v1 = meta.field("fieldsV1")
    assert fields_v1 is not None and fields_v1.is_free_form


def test_served_definitions_cover_every_served_kind() -> None:
    served = schema.served_definitions()
    assert {r.gvk for r in resources.ALL} == set(served)
    assert served[STS] == "io.k8s.api.apps.v1.StatefulSet"
    assert schema.kinds_with_definitions()[PVC] == "io.k8s.api.core.v1.PersistentVolumeClaim"
    assert schema.for_kind(GroupVersionKind(group="x.io", version="v1", kind="Nope")) is None

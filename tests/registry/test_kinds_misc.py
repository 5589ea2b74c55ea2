"""EndpointSlice, Lease and the catalogue of strategies."""

from __future__ import annotations

from kubeling.machinery import resources as r
from kubeling.registry.catalog import strategies
from kubeling.registry.kinds.core import EventStrategy
from kubeling.registry.strategy import Strategy
from tests.registry.test_kinds_support import create


def test_catalog_covers_every_resource_with_a_kind_strategy() -> None:
    table = strategies()
    assert set(table) == set(r.ALL)
    for info, strategy in table.items():
        assert strategy.info is info
        assert type(strategy) is not Strategy, info.kind
    assert isinstance(table[r.EVENTS_V1], EventStrategy)


def test_status_subresource_flags_follow_discovery() -> None:
    for info, strategy in strategies().items():
        assert strategy.status_subresource == ("status" in info.subresources), info.kind


def test_endpointslice_defaults_and_address_type() -> None:
    es = {"metadata": {"name": "s", "namespace": "default"}, "addressType": "IPv5",
          "ports": [{"port": 80}], "endpoints": [{"addresses": []}]}  # fmt: skip
    out, errs = create(r.ENDPOINTSLICES, es)
    assert out["ports"][0] == {"port": 80, "name": "", "protocol": "TCP"}
    assert errs == [
        'addressType: Unsupported value: "IPv5": supported values: "FQDN", "IPv4", "IPv6"',
        "endpoints[0].addresses: Required value: must contain at least 1 address",
    ]


def test_lease_duration_positive() -> None:
    lease = {"metadata": {"name": "l", "namespace": "kube-node-lease"},
             "spec": {"holderIdentity": "n1", "leaseDurationSeconds": 0}}  # fmt: skip
    _, errs = create(r.LEASES, lease)
    assert errs == ["spec.leaseDurationSeconds: Invalid value: 0: must be greater than 0"]


def test_declared_field_selector_labels_are_produced() -> None:
    for info, strategy in strategies().items():
        obj = {"apiVersion": info.api_version, "kind": info.kind, "metadata": {"name": "x"}}
        produced = set(strategy.field_labels(obj))
        assert set(strategy.field_selector_labels) <= produced, info.kind


def test_node_keeps_status_on_create() -> None:
    assert strategies()[r.NODES].clear_status_on_create is False

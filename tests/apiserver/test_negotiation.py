"""Which meta.k8s.io form an Accept header asks for (Table, PartialObjectMetadata)."""

from __future__ import annotations

import pytest

from kubeling.apiserver.negotiation import answer_form, not_acceptable, table_version

KUBECTL_GET = (
    b"application/json;as=Table;v=v1;g=meta.k8s.io,"
    b"application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json"
)
METADATA = b"application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1,application/json"
METADATA_LIST = (
    b"application/vnd.kubernetes.protobuf;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,"
    b"application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json"
)


@pytest.mark.parametrize(
    ("accept", "listing", "expected"),
    [
        pytest.param(b"application/json", True, ("", ""), id="plain-json"),
        pytest.param(b"*/*", False, ("", ""), id="anything"),
        pytest.param(KUBECTL_GET, True, ("Table", "v1"), id="kubectl-get"),
        pytest.param(METADATA, False, ("PartialObjectMetadata", "v1"), id="metadata-object"),
        pytest.param(METADATA_LIST, True, ("PartialObjectMetadataList", "v1"), id="metadata-list"),
        # A form that does not fit the request is still the one asked for: the handler
        # answers 406, as upstream, instead of trying the next type.
        pytest.param(
            METADATA_LIST, False, ("PartialObjectMetadataList", "v1"), id="list-form-for-object"
        ),
        pytest.param(METADATA, True, ("PartialObjectMetadata", "v1"), id="object-form-for-list"),
        pytest.param(
            b"application/json;as=Foo;g=meta.k8s.io;v=v1", True, ("!", ""), id="unknown-form-only"
        ),
        pytest.param(
            b"application/json;as=PartialObjectMetadata;g=example.com;v=v1,application/json",
            False,
            ("", ""),
            id="wrong-group",
        ),
        pytest.param(
            b"application/json,application/json;as=Table;v=v1;g=meta.k8s.io",
            True,
            ("", ""),
            id="json-listed-first-wins",
        ),
    ],
)
def test_answer_form_follows_the_first_acceptable_type(
    accept: bytes, listing: bool, expected: tuple[str, str]
) -> None:
    assert answer_form(accept, listing=listing) == expected


def test_table_version_ignores_metadata_forms() -> None:
    assert table_version(KUBECTL_GET) == "v1"
    assert table_version(METADATA) == ""


def test_not_acceptable_words_each_refusal_as_upstream() -> None:
    assert not_acceptable("", listing=True, type_name="*core.ConfigMapList") is None
    assert not_acceptable("Table", listing=False, type_name="*core.ConfigMap") is None
    refused = not_acceptable("PartialObjectMetadata", listing=True, type_name="*core.PodList")
    assert refused is not None and refused.code == 406
    assert str(refused) == (
        "you requested PartialObjectMetadata, but the requested object is a list (*core.PodList)"
    )
    refused = not_acceptable("PartialObjectMetadataList", listing=False, type_name="*core.Pod")
    assert refused is not None
    assert str(refused) == (
        "you requested PartialObjectMetadataList, but the requested object is not a list "
        "(*core.Pod)"
    )
    refused = not_acceptable("!", listing=True, type_name="*core.PodList")
    assert refused is not None
    assert str(refused) == (
        "only the following media types are accepted: application/json, application/yaml, "
        "application/vnd.kubernetes.protobuf"
    )

"""Which meta.k8s.io form an Accept header asks for (Table, PartialObjectMetadata)."""

from __future__ import annotations

import pytest

from kubeling.apiserver.negotiation import answer_form, table_version

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
        # The list form does not fit one object: the plain JSON after it is chosen instead.
        pytest.param(METADATA_LIST, False, ("", ""), id="list-form-for-object"),
        pytest.param(METADATA, True, ("", ""), id="object-form-for-list"),
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

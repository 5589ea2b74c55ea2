"""Strict decoding: unknown/duplicate fields and type errors, with upstream's texts."""

from __future__ import annotations

import pathlib
from typing import Any

import pytest

from kubeling.machinery.decode import (
    MAX_DEPTH,
    BodySyntaxError,
    DuplicateKeysDict,
    TypedPatchError,
    check_type_meta,
    check_typed_patch,
    check_value_depth,
    decode_body,
    decode_object,
    go_json_error,
    has_duplicates,
    loads,
    not_an_object,
    unrecognized,
    yaml_error,
)
from kubeling.machinery.errors import BadRequest
from kubeling.machinery.types import GroupVersionKind

DEPLOYMENT = GroupVersionKind(group="apps", version="v1", kind="Deployment")
PVC = GroupVersionKind(group="", version="v1", kind="PersistentVolumeClaim")
POD = GroupVersionKind(group="", version="v1", kind="Pod")
SECRET = GroupVersionKind(group="", version="v1", kind="Secret")

# The body of upstream's test/integration/apiserver/field_validation_test.go (invalidBodyJSON).
INVALID_DEPLOYMENT = b"""{
  "apiVersion": "apps/v1", "kind": "Deployment",
  "metadata": {"name": "dupename", "name": "web", "labels": {"app": "nginx"},
               "unknownMeta": "metaVal"},
  "spec": {
    "unknown1": "val1", "unknownDupe": "valDupe", "unknownDupe": "valDupe2",
    "paused": true, "paused": false,
    "selector": {"matchLabels": {"app": "nginx"}},
    "template": {
      "metadata": {"labels": {"app": "nginx"}},
      "spec": {"containers": [{"name": "nginx", "image": "nginx:latest",
                               "unknownNested": "val1",
                               "imagePullPolicy": "Always", "imagePullPolicy": "Never"}]}}}}"""

UPSTREAM_WARNINGS = [
    'duplicate field "metadata.name"',
    'unknown field "metadata.unknownMeta"',
    'unknown field "spec.unknown1"',
    'unknown field "spec.unknownDupe"',
    'duplicate field "spec.paused"',
    'unknown field "spec.template.spec.containers[0].unknownNested"',
    'duplicate field "spec.template.spec.containers[0].imagePullPolicy"',
]


def test_decode_strict_reports_all_problems_in_upstream_order() -> None:
    with pytest.raises(BadRequest) as exc:
        decode_object(loads(INVALID_DEPLOYMENT), gvk=DEPLOYMENT, mode="Strict")
    assert exc.value.message == (
        'Deployment in version "v1" cannot be handled as a Deployment: strict decoding error: '
        + ", ".join(UPSTREAM_WARNINGS)
    )
    assert exc.value.code == 400


def test_decode_warn_returns_warnings_and_drops_unknown_fields() -> None:
    obj, warnings = decode_object(None, gvk=DEPLOYMENT, mode="Warn", raw=INVALID_DEPLOYMENT)
    assert warnings == UPSTREAM_WARNINGS
    assert obj["metadata"] == {"name": "web", "labels": {"app": "nginx"}}
    assert "unknown1" not in obj["spec"] and "unknownDupe" not in obj["spec"]
    assert obj["spec"]["paused"] is False  # the last duplicate wins, as in Go
    container = obj["spec"]["template"]["spec"]["containers"][0]
    assert container == {"name": "nginx", "image": "nginx:latest", "imagePullPolicy": "Never"}
    assert not has_duplicates(obj)


def test_decode_ignore_drops_silently() -> None:
    obj, warnings = decode_object(loads(INVALID_DEPLOYMENT), gvk=DEPLOYMENT, mode="Ignore")
    assert warnings == []
    assert "unknownMeta" not in obj["metadata"]


def test_decode_pvc_unknown_field_message() -> None:
    body = {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "spec": {"resources": {"request": {"storage": "1Gi"}}}}  # fmt: skip
    with pytest.raises(BadRequest) as exc:
        decode_object(body, gvk=PVC, mode="Strict")
    assert exc.value.message == (
        'PersistentVolumeClaim in version "v1" cannot be handled as a PersistentVolumeClaim: '
        'strict decoding error: unknown field "spec.resources.request"'
    )
    obj, warnings = decode_object(body, gvk=PVC, mode="Warn")
    assert warnings == ['unknown field "spec.resources.request"']
    assert obj["spec"]["resources"] == {}
    assert body["spec"]["resources"] == {"request": {"storage": "1Gi"}}  # input untouched


def test_decode_returns_same_object_when_nothing_is_unknown() -> None:
    body = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "labels": {"a": "b"}},
            "spec": {"containers": [{"name": "c", "image": "i", "ports": [{"containerPort": 80}],
                                     "resources": {"limits": {"cpu": "500m"}}}]}}  # fmt: skip
    for mode in ("Strict", "Warn", "Ignore"):
        obj, warnings = decode_object(body, gvk=POD, mode=mode)  # type: ignore[arg-type]
        assert obj is body
        assert warnings == []


def test_decode_accepts_rfc3339_timestamps() -> None:
    for ts in ("2025-01-01T10:00:00Z", "2025-01-01T10:00:00.5+02:00", "2024-02-29T00:00:00Z"):
        body = {"metadata": {"name": "p", "creationTimestamp": ts}}
        assert decode_object(body, gvk=POD, mode="Strict") == (body, [])


def test_decode_free_form_fields_are_not_checked() -> None:
    body = {"metadata": {"name": "p", "managedFields": [
        {"manager": "m", "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:anything": {}}}}]}}  # fmt: skip
    assert decode_object(body, gvk=POD, mode="Strict") == (body, [])


def test_decode_map_values_are_walked() -> None:
    body = {"spec": {"overhead": {"cpu": "bad-quantity"}, "containers": []}}
    with pytest.raises(BadRequest) as exc:
        decode_object(body, gvk=POD, mode="Ignore")
    assert exc.value.message.endswith(
        "cannot be handled as a Pod: quantities must match the regular expression "
        "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
    )


@pytest.mark.parametrize(
    ("gvk", "body", "detail"),
    [
        pytest.param(
            DEPLOYMENT,
            {"spec": {"replicas": "3"}},
            "json: cannot unmarshal string into Go struct field DeploymentSpec.spec.replicas "
            "of type int32",
            id="string-for-int",
        ),
        pytest.param(
            DEPLOYMENT,
            {"spec": {"replicas": 1.5}},
            "json: cannot unmarshal number 1.5 into Go struct field DeploymentSpec.spec.replicas "
            "of type int32",
            id="float-for-int",
        ),
        pytest.param(
            DEPLOYMENT,
            {"spec": {"replicas": 2.0}},
            "json: cannot unmarshal number 2.0 into Go struct field DeploymentSpec.spec.replicas "
            "of type int32",
            id="integral-float-for-int",
        ),
        pytest.param(
            POD,
            {"metadata": {"name": {"a": 1}}},
            "json: cannot unmarshal object into Go struct field ObjectMeta.metadata.name "
            "of type string",
            id="object-for-string",
        ),
        pytest.param(
            POD,
            {"spec": {"containers": {"name": "x"}}},
            "json: cannot unmarshal object into Go struct field PodSpec.spec.containers "
            "of type []v1.Container",
            id="object-for-list",
        ),
        pytest.param(
            PVC,
            {"spec": {"resources": {"requests": {"storage": "1Gx"}}}},
            "quantities must match the regular expression "
            "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'",
            id="bad-quantity",
        ),
        pytest.param(
            POD,
            {
                "spec": {
                    "containers": [
                        {"name": "c", "ports": [{"containerPort": 80, "hostPort": True}]}
                    ]
                }
            },
            "json: cannot unmarshal bool into Go struct field "
            "ContainerPort.spec.containers.ports.hostPort of type int32",
            id="bool-in-list-item",
        ),
        pytest.param(
            POD,
            {"spec": {"containers": [{"name": "c", "env": [{"name": "A", "value": 1}]}]}},
            "json: cannot unmarshal number into Go struct field EnvVar.spec.containers.env.value "
            "of type string",
            id="number-for-string-in-list",
        ),
        pytest.param(
            GroupVersionKind(group="", version="v1", kind="ConfigMap"),
            {"data": {"k": 1}},
            "json: cannot unmarshal number into Go struct field ConfigMap.data of type string",
            id="number-as-map-value",
        ),
        pytest.param(
            SECRET,
            {"data": {"k": "not base64!"}},
            "illegal base64 data at input byte 3",
            id="bad-base64",
        ),
        pytest.param(
            POD,
            {"metadata": {"name": "p", "deletionTimestamp": "2025-01-01"}},
            'parsing time "2025-01-01" as "2006-01-02T15:04:05Z07:00": cannot parse "" as "T"',
            id="short-timestamp",
        ),
        pytest.param(
            POD,
            {"metadata": {"creationTimestamp": "2025-13-01T00:00:00Z"}},
            'parsing time "2025-13-01T00:00:00Z": month out of range',
            id="timestamp-month-range",
        ),
        pytest.param(
            POD,
            {"metadata": {"creationTimestamp": 5}},
            "json: cannot unmarshal number into Go value of type string",
            id="number-timestamp",
        ),
        pytest.param(
            SECRET,
            {"data": {"k": "abcde"}},
            "illegal base64 data at input byte 4",
            id="short-base64-quantum",
        ),
    ],
)
def test_decode_type_errors_are_400_in_every_mode(
    gvk: GroupVersionKind, body: dict[str, Any], detail: str
) -> None:
    for mode in ("Strict", "Warn", "Ignore"):
        with pytest.raises(BadRequest) as exc:
            decode_object(body, gvk=gvk, mode=mode)  # type: ignore[arg-type]
        assert exc.value.message == (
            f'{gvk.kind} in version "{gvk.version}" cannot be handled as a {gvk.kind}: {detail}'
        )


def test_loads_marks_only_objects_with_duplicates() -> None:
    parsed = loads(b'{"a": {"x": 1, "x": 2}, "b": {"y": 1}}')
    assert type(parsed) is dict
    assert isinstance(parsed["a"], DuplicateKeysDict)
    assert parsed["a"] == {"x": 2}
    assert parsed["a"].pairs == [("x", 1), ("x", 2)]
    assert type(parsed["b"]) is dict


def test_loads_rejects_malformed_json() -> None:
    with pytest.raises(BadRequest):
        loads(b'{"a": ')


def test_duplicate_map_keys_are_reported() -> None:
    body = loads(b'{"metadata": {"labels": {"a": "1", "a": "2"}}}')
    obj, warnings = decode_object(body, gvk=POD, mode="Warn")
    assert warnings == ['duplicate field "metadata.labels.a"']
    assert obj["metadata"]["labels"] == {"a": "2"}
    assert type(obj["metadata"]["labels"]) is dict


def test_unknown_kind_passes_through() -> None:
    gvk = GroupVersionKind(group="example.com", version="v1", kind="Widget")
    body = {"spec": {"anything": 1}}
    assert decode_object(body, gvk=gvk, mode="Strict") == (body, [])


def test_check_type_meta_rejects_other_api_version() -> None:
    check_type_meta({"apiVersion": "apps/v1", "kind": "Deployment"}, gvk=DEPLOYMENT)
    check_type_meta({}, gvk=DEPLOYMENT)
    with pytest.raises(BadRequest) as exc:
        check_type_meta({"apiVersion": "extensions/v1beta1", "kind": "Deployment"}, gvk=DEPLOYMENT)
    assert exc.value.message == (
        'Deployment in version "v1beta1" cannot be handled as a Deployment: no kind "Deployment" '
        'is registered for version "extensions/v1beta1" in scheme '
        '"k8s.io/kubernetes/pkg/api/legacyscheme/scheme.go:30"'
    )


def test_decode_body_of_another_kind_is_a_conversion_error() -> None:
    body = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "x"}, "bogus": 1}
    with pytest.raises(BadRequest) as exc:
        decode_object(body, gvk=POD, mode="Strict")
    assert exc.value.message == (
        'Service in version "v1" cannot be handled as a Pod: converting (v1.Service) to '
        "(core.Pod): unknown conversion"
    )
    sts = GroupVersionKind(group="apps", version="v1", kind="StatefulSet")
    with pytest.raises(BadRequest) as exc:
        decode_object({"apiVersion": "apps/v1", "kind": "Deployment"}, gvk=sts)
    assert exc.value.message.endswith(
        "converting (v1.Deployment) to (apps.StatefulSet): unknown conversion"
    )


def test_decode_other_api_version_of_the_kind_is_refused_after_field_checks() -> None:
    # events.k8s.io/v1 Event posted to the core events endpoint: known kind, other group
    core_event = GroupVersionKind(group="", version="v1", kind="Event")
    body = {"apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": {"name": "e"}}
    with pytest.raises(BadRequest) as exc:
        decode_object(body, gvk=core_event, mode="Strict")
    assert exc.value.message == (
        "the API version in the data (events.k8s.io/v1) does not match the expected API "
        "version (v1)"
    )
    with pytest.raises(BadRequest) as exc:
        decode_object({**body, "bogus": 1}, gvk=core_event, mode="Strict")
    assert exc.value.message == (
        'Event in version "v1" cannot be handled as a Event: strict decoding error: '
        'unknown field "bogus"'
    )


def test_decode_body_accepts_json_and_kubectl_protobuf() -> None:
    configmap = GroupVersionKind(group="", version="v1", kind="ConfigMap")
    fixture = pathlib.Path(__file__).parent / "fixtures" / "protobuf" / "configmap.bin"
    obj, warnings = decode_body(
        fixture.read_bytes(),
        content_type="application/vnd.kubernetes.protobuf",
        gvk=configmap,
        mode="Strict",
    )
    assert obj["metadata"] == {"name": "c1"} and obj["data"]["x"] == "y"
    assert warnings == []
    obj, warnings = decode_body(
        b'{"kind": "ConfigMap", "apiVersion": "v1", "data": {"a": "b"}, "x": 1}',
        content_type=None,
        gvk=configmap,
        mode="Warn",
    )
    assert obj == {"kind": "ConfigMap", "apiVersion": "v1", "data": {"a": "b"}}
    assert warnings == ['unknown field "x"']


CONFIGMAP = GroupVersionKind(group="", version="v1", kind="ConfigMap")
CONTROLLER_REVISION = GroupVersionKind(group="apps", version="v1", kind="ControllerRevision")


@pytest.mark.parametrize("mode", ["Strict", "Warn", "Ignore"])
def test_decode_nulls_become_what_go_typed_decoding_leaves(mode: str) -> None:
    body = loads(
        b"""{"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "labels": {"x": null}, "finalizers": [null],
                     "resourceVersion": null},
        "spec": {"replicas": null, "template": {"spec": {
          "containers": [null, {"name": "c", "image": null, "args": [null],
                                "resources": {"limits": {"cpu": null}}, "ports": [null]}],
          "volumes": [null]}}}}"""
    )
    obj, _ = decode_object(body, gvk=DEPLOYMENT, mode=mode)  # type: ignore[arg-type]
    assert obj["metadata"] == {"name": "web", "labels": {"x": ""}, "finalizers": [""]}
    assert obj["spec"] == {
        "template": {
            "spec": {
                "containers": [
                    {},
                    {
                        "name": "c",
                        "args": [""],
                        "resources": {"limits": {"cpu": "0"}},
                        "ports": [{}],
                    },
                ],
                "volumes": [{}],
            }
        }
    }
    # the caller's body is left as it was
    assert body["spec"]["replicas"] is None


def test_decode_nulls_in_string_maps_and_free_form_values() -> None:
    cm, _ = decode_object(
        {"apiVersion": "v1", "kind": "ConfigMap", "data": {"key1": None, "key2": "v"}},
        gvk=CONFIGMAP,
    )
    assert cm["data"] == {"key1": "", "key2": "v"}
    rev, _ = decode_object(
        {"apiVersion": "apps/v1", "kind": "ControllerRevision", "data": {"a": None, "b": [None]}},
        gvk=CONTROLLER_REVISION,
    )
    assert rev["data"] == {"a": None, "b": [None]}  # RawExtension: kept as written


def test_decode_secret_data_is_reencoded_as_go_writes_it() -> None:
    body = {
        "apiVersion": "v1",
        "kind": "Secret",
        "data": {"nl": "YWJj\nZA==", "bits": "YWJjZB==", "plain": "YWJjZA==", "null": None},
    }
    obj, _ = decode_object(body, gvk=SECRET)
    assert obj["data"] == {"nl": "YWJjZA==", "bits": "YWJjZA==", "plain": "YWJjZA==", "null": ""}


def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


@pytest.mark.parametrize(
    ("text", "refused"),
    [
        pytest.param(_nested(MAX_DEPTH), False, id="at-the-limit"),
        pytest.param(_nested(MAX_DEPTH + 1), True, id="one-deeper"),
        pytest.param('{"a": ' + _nested(1000) + "}", True, id="thousand-deep"),
        pytest.param('{"s": "' + "[" * 500 + '"}', False, id="brackets-inside-a-string"),
        pytest.param('{"s": "\\"' + "{" * 500 + '"}', False, id="after-an-escaped-quote"),
    ],
)
def test_loads_refuses_bodies_nested_deeper_than_the_limit(text: str, refused: bool) -> None:
    if not refused:
        assert loads(text) is not None
        return
    with pytest.raises(BadRequest) as exc:
        loads(text)
    assert exc.value.message == (
        f"the request body is nested too deeply: kubeling accepts at most {MAX_DEPTH} levels of "
        "JSON arrays and objects"
    )


def test_check_value_depth_walks_parsed_yaml_without_recursion() -> None:
    deep: list[Any] = []
    cur = deep
    for _ in range(5000):
        nxt: list[Any] = []
        cur.append(nxt)
        cur = nxt
    with pytest.raises(BadRequest):
        check_value_depth(deep)
    check_value_depth({"a": [[{"b": []}]]})


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        pytest.param(
            {"metadata": {"name": "c", "namespace": "ns"}, "foo": "bar"},
            ".foo: field not declared in schema",
            id="unknown-field",
        ),
        pytest.param(
            {"metadata": {"name": "c", "namespace": "ns"}, "data": {"a": 1}},
            ".data.a: expected string, got &value.valueUnstructured{Value:1}",
            id="int-in-string-map",
        ),
        pytest.param(
            {"metadata": {"name": "c", "namespace": "ns"}, "data": {"a": 1}, "foo": 1},
            "errors:\n  .data.a: expected string, got &value.valueUnstructured{Value:1}\n"
            "  .foo: field not declared in schema",
            id="several",
        ),
    ],
)
def test_check_typed_patch_reports_structured_merge_diff_errors(
    body: dict[str, Any], detail: str
) -> None:
    with pytest.raises(TypedPatchError) as exc:
        check_typed_patch({"apiVersion": "v1", "kind": "ConfigMap", **body}, gvk=CONFIGMAP)
    status = exc.value.to_status()
    assert status["code"] == 500 and "reason" not in status
    assert status["message"] == (
        f"failed to create typed patch object (ns/c; /v1, Kind=ConfigMap): {detail}"
    )


def test_check_typed_patch_paths_name_list_elements_by_their_keys() -> None:
    body = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "d"},
        "spec": {
            "replicas": "3",
            "template": {
                "spec": {
                    "containers": [
                        {"name": "c", "ports": [{"containerPort": 80, "protocol": "TCP", "x": 1}]}
                    ],
                    "tolerations": [{"key": "k", "y": 1}],
                }
            },
        },
    }
    with pytest.raises(TypedPatchError) as exc:
        check_typed_patch(body, gvk=DEPLOYMENT)
    assert exc.value.message.splitlines()[1:] == [
        "  .spec.replicas: expected numeric (int or float), got string",
        '  .spec.template.spec.containers[name="c"].ports[containerPort=80,protocol="TCP"].x: '
        "field not declared in schema",
        "  .spec.template.spec.tolerations[0].y: field not declared in schema",
    ]


def test_check_typed_patch_accepts_nulls_quantities_and_free_form_values() -> None:
    check_typed_patch(
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "d", "labels": None},
            "spec": {
                "template": {
                    "spec": {"containers": [{"name": "c", "resources": {"limits": {"cpu": 1}}}]}
                },
                "strategy": {"rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 1}},
            },
        },
        gvk=DEPLOYMENT,
    )
    check_typed_patch(
        {"apiVersion": "apps/v1", "kind": "ControllerRevision", "data": {"any": [1, {"x": None}]}},
        gvk=CONTROLLER_REVISION,
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param(b'{"kind":"ConfigMap"', "unexpected end of JSON input", id="truncated"),
        pytest.param(b"", "unexpected end of JSON input", id="empty"),
        pytest.param(b'{"a" 1}', "invalid character '1' after object key", id="no-colon"),
        pytest.param(
            b'{"a":1 "b":2}', "invalid character '\"' after object key:value pair", id="no-comma"
        ),
        pytest.param(
            b"[1,]", "invalid character ']' looking for beginning of value", id="trailing"
        ),
        pytest.param(
            b"{'a':1}",
            "invalid character '\\'' looking for beginning of object key string",
            id="single-quotes",
        ),
        pytest.param(b"[1 2]", "invalid character '2' after array element", id="array"),
        pytest.param(b"{} x", "invalid character 'x' after top-level value", id="after-top"),
        pytest.param(b'["\x01"]', "invalid character '\\x01' in string literal", id="control"),
        pytest.param(
            b"trux", "invalid character 'x' in literal true (expecting 'e')", id="literal"
        ),
        pytest.param(b"NaN", "invalid character 'N' looking for beginning of value", id="nan"),
        pytest.param(
            b"1.x", "invalid character 'x' after decimal point in numeric literal", id="decimal"
        ),
    ],
)
def test_loads_reports_go_json_syntax_errors(text: bytes, message: str) -> None:
    with pytest.raises(BodySyntaxError) as exc:
        loads(text)
    assert exc.value.message == f"couldn't get version/kind; json parse error: {message}"
    assert go_json_error(b'  {"a":{"b":[true,false,null,-1.5e+3,"x\\u00e9"]}}  ') is None


def test_unrecognized_summarises_the_body_as_upstream() -> None:
    long_json = b'{"apiVersion":"v1","kind":"ConfigMap"'
    assert unrecognized("ConfigMap", "E", long_json).message == (
        'the object provided is unrecognized (must be of type ConfigMap): E ({"apiVersion":"v1",'
        '"kind":"Con ...)'
    )
    assert unrecognized("Pod", "E", b'"abc"').message == (
        "the object provided is unrecognized (must be of type Pod): E (2261626322)"
    )
    assert unrecognized("Pod", "E", b"").message.endswith("E (<empty>)")
    assert not_an_object("x") == (
        "couldn't get version/kind; json parse error: json: cannot unmarshal string into Go value "
        'of type struct { APIVersion string "json:\\"apiVersion,omitempty\\""; Kind string '
        '"json:\\"kind,omitempty\\"" }'
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param(
            "metadata:\n  name: x\n  bad: : y\n",
            "yaml: line 3: mapping values are not allowed in this context",
            id="scanner-lines-from-one",
        ),
        pytest.param(
            "a:\n  b: 1\n c: 2\n", "yaml: line 2: did not find expected key", id="parser-from-zero"
        ),
        pytest.param(
            "a: [1, 2\nb: 3\n", "yaml: line 1: did not find expected ',' or ']'", id="flow"
        ),
        pytest.param(
            "a: @x\n", "yaml: line 1: found character that cannot start any token", id="token"
        ),
    ],
)
def test_yaml_error_uses_go_yaml_wording(text: str, message: str) -> None:
    import yaml

    with pytest.raises(yaml.YAMLError) as exc:
        yaml.safe_load(text)
    assert yaml_error(exc.value) == f"error converting YAML to JSON: {message}"


@pytest.mark.parametrize(
    ("written", "stored"),
    [
        pytest.param("1.5Gi", "1536Mi", id="binary-fraction-steps-down"),
        pytest.param("2048Ki", "2Mi", id="binary-steps-up"),
        pytest.param("0.5Ki", "512", id="small-binary-is-decimal"),
        pytest.param("1000M", "1G", id="decimal-steps-up"),
        pytest.param("1000m", "1", id="milli-to-units"),
        pytest.param("1.5", "1500m", id="fraction-to-milli"),
        pytest.param("1e3", "1e3", id="exponent-stays"),
        pytest.param("10Gi", "10Gi", id="already-canonical"),
        pytest.param(2, "2", id="json-number"),
    ],
)
def test_quantities_are_stored_in_canonical_form(written: Any, stored: str) -> None:
    body = {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": "q"},
        "spec": {"resources": {"requests": {"storage": written}, "limits": {"storage": "1Ti"}}},
    }
    obj, _ = decode_object(body, gvk=PVC, mode="Strict")
    assert obj["spec"]["resources"]["requests"] == {"storage": stored}
    assert obj["spec"]["resources"]["limits"] == {"storage": "1Ti"}

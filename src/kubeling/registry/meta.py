"""ObjectMeta rules every kind shares: validation, generated names, timestamps, managedFields.

These are upstream's ``rest.BeforeCreate``/``BeforeUpdate`` and ``ValidateObjectMeta``
rules, kept apart from the store so the store reads as the sequence of steps a write goes
through. Name, label and annotation syntax come from ``registry.validation`` (the shared
validators with upstream's texts); this module adds what only metadata has: finalizer names,
owner references, the fields an update may never change, and the simple per-manager
``managedFields`` bookkeeping that server-side apply will later replace.
"""

from __future__ import annotations

import datetime
import random
from collections.abc import Callable
from typing import Any, Final

from kubeling.machinery import field as f
from kubeling.machinery.field import FieldError, Path
from kubeling.machinery.types import Obj
from kubeling.registry import validation

# -- names and timestamps --------------------------------------------------------------------

# upstream's utilrand alphanums: no vowels (no words) and no easily confused characters.
GENERATE_ALPHABET: Final = "bcdfghjklmnpqrstvwxz2456789"
GENERATE_SUFFIX_LEN: Final = 5
MAX_GENERATED_NAME_LEN: Final = 63
_MAX_GENERATE_PREFIX: Final = MAX_GENERATED_NAME_LEN - GENERATE_SUFFIX_LEN


def generate_name(prefix: str, *, rng: random.Random | None = None) -> str:
    """``names.SimpleNameGenerator``: the prefix, cut to 58 characters, plus 5 random ones."""
    r = rng or _RNG
    if len(prefix) > _MAX_GENERATE_PREFIX:
        prefix = prefix[:_MAX_GENERATE_PREFIX]
    return prefix + "".join(r.choice(GENERATE_ALPHABET) for _ in range(GENERATE_SUFFIX_LEN))


_RNG = random.SystemRandom()


def rfc3339(epoch: float) -> str:
    """``metav1.Time`` as JSON: UTC, whole seconds, ``Z``."""
    t = datetime.datetime.fromtimestamp(int(epoch), tz=datetime.UTC)
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def rfc3339_micro(epoch: float) -> str:
    """``metav1.MicroTime`` as JSON (Event ``eventTime``, Lease times)."""
    t = datetime.datetime.fromtimestamp(epoch, tz=datetime.UTC)
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(text: str) -> float:
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


# -- validation ------------------------------------------------------------------------------

STANDARD_FINALIZERS: Final = frozenset({"kubernetes", "orphan", "foregroundDeletion"})
_META = Path("metadata")


def validate_generate_name(prefix: str, *, name_validation: str) -> list[FieldError]:
    """Upstream validates the prefix with trailing dashes masked (``maskTrailingDash``)."""
    masked = prefix[:-1] + "a" if len(prefix) > 1 and prefix.endswith("-") else prefix
    check = validation.NAME_CHECKS[name_validation]
    return [f.invalid(_META.child("generateName"), prefix, m) for m in check(masked)]


def validate_finalizers(finalizers: list[Any] | None) -> list[FieldError]:
    path = _META.child("finalizers")
    errs: list[FieldError] = []
    names = [str(x) for x in finalizers or ()]
    for name in names:
        msgs = validation.is_qualified_name(name)
        if msgs:
            errs.extend(f.invalid(path, name, m) for m in msgs)
        elif "/" not in name and name not in STANDARD_FINALIZERS:
            errs.append(
                f.invalid(
                    path,
                    name,
                    "name is neither a standard finalizer name nor is it fully qualified",
                )
            )
    if "orphan" in names and "foregroundDeletion" in names:
        errs.append(
            f.invalid(path, names, "finalizer orphan and foregroundDeletion cannot be both set")
        )
    return errs


def validate_owner_references(refs: list[Any] | None) -> list[FieldError]:
    path = _META.child("ownerReferences")
    errs: list[FieldError] = []
    controllers: list[str] = []
    for ref in refs or ():
        if not isinstance(ref, dict):
            continue
        api_version = ref.get("apiVersion") or ""
        if not api_version:
            errs.append(
                f.invalid(path.child("apiVersion"), api_version, "version must not be empty")
            )
        if not ref.get("kind"):
            errs.append(
                f.invalid(path.child("kind"), ref.get("kind") or "", "kind must not be empty")
            )
        if not ref.get("name"):
            errs.append(
                f.invalid(path.child("name"), ref.get("name") or "", "name must not be empty")
            )
        if not ref.get("uid"):
            errs.append(f.invalid(path.child("uid"), ref.get("uid") or "", "uid must not be empty"))
        if ref.get("controller"):
            controllers.append(f"{ref.get('kind', '')}/{ref.get('name', '')}")
    if len(controllers) > 1:
        errs.append(
            f.invalid(
                path,
                refs,
                'Only one reference can have Controller set to true. Found "true" in '
                f"references for {' and '.join(controllers)}",
            )
        )
    return errs


def validate_object_meta(obj: Obj, *, namespaced: bool, name_validation: str) -> list[FieldError]:
    """``ValidateObjectMeta`` for a create (the name is generated by now)."""
    meta = obj.get("metadata") or {}
    errs: list[FieldError] = []
    gen = meta.get("generateName") or ""
    if gen:
        errs.extend(validate_generate_name(gen, name_validation=name_validation))
    errs.extend(
        validation.validate_object_meta(obj, namespaced=namespaced, name_validation=name_validation)
    )
    errs.extend(validate_finalizers(meta.get("finalizers")))
    errs.extend(validate_owner_references(meta.get("ownerReferences")))
    return errs


_IMMUTABLE_META: Final = ("name", "namespace", "uid", "creationTimestamp")


def validate_object_meta_update(
    new: Obj, old: Obj, *, namespaced: bool, name_validation: str
) -> list[FieldError]:
    """``ValidateObjectMetaUpdate``: the immutable fields, then the create rules again."""
    nm = new.get("metadata") or {}
    om = old.get("metadata") or {}
    errs: list[FieldError] = []
    for key in _IMMUTABLE_META:
        if nm.get(key) != om.get(key):
            errs.append(f.invalid(_META.child(key), nm.get(key), "field is immutable"))
    errs.extend(
        validation.validate_object_meta(new, namespaced=namespaced, name_validation=name_validation)
    )
    errs.extend(validate_finalizers(nm.get("finalizers")))
    if om.get("deletionTimestamp"):
        extra = sorted(set(nm.get("finalizers") or ()) - set(om.get("finalizers") or ()))
        if extra:
            listed = ", ".join(f'"{x}"' for x in extra)
            errs.append(
                f.forbidden(
                    _META.child("finalizers"),
                    "no new finalizers can be added if the object is being deleted, found new "
                    f"finalizers []string{{{listed}}}",
                )
            )
    errs.extend(validate_owner_references(nm.get("ownerReferences")))
    return errs


# -- managedFields ---------------------------------------------------------------------------

# Fields no manager owns, as upstream's field manager strips them before computing sets.
_STRIPPED_META: Final = frozenset(
    {
        "name",
        "namespace",
        "creationTimestamp",
        "selfLink",
        "uid",
        "generation",
        "managedFields",
        "resourceVersion",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
    }
)


def fields_v1(obj: Obj, *, skip_status: bool = False) -> dict[str, Any]:
    """A ``FieldsV1`` set naming every leaf of ``obj`` (lists count as one leaf).

    This is the simple ownership model the store records until server-side apply's field
    manager replaces it: lists are atomic, maps are granular.
    """
    out: dict[str, Any] = {}
    for key, value in obj.items():
        if key in ("apiVersion", "kind"):
            continue
        if key == "status" and skip_status:
            continue
        if key == "metadata" and isinstance(value, dict):
            sub = {k: v for k, v in value.items() if k not in _STRIPPED_META}
            inner = _leaf_set(sub)
            if inner:
                out["f:metadata"] = inner
            continue
        out[f"f:{key}"] = _leaf_set(value) if isinstance(value, dict) else {}
    return out


def _leaf_set(value: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in value.items():
        if isinstance(v, dict) and v:
            out[f"f:{k}"] = _leaf_set(v)
        else:
            out[f"f:{k}"] = {}
    return out


def _changed_fields(new: Any, old: Any) -> dict[str, Any] | None:
    """The part of ``new``'s field set whose values differ from ``old`` (None: no change)."""
    if isinstance(new, dict) and isinstance(old, dict):
        out: dict[str, Any] = {}
        for k, v in new.items():
            sub = _changed_fields(v, old.get(k, _MISSING))
            if sub is not None:
                out[f"f:{k}"] = sub
        return out or None
    if new == old:
        return None
    if isinstance(new, dict):
        return _leaf_set(new) or {}
    return {}


_MISSING: Final = object()


def _union(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    out = dict(a)
    for k, v in b.items():
        out[k] = _union(out[k], v) if k in out else v
    return out


def _subtract(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """Fields of ``a`` not in ``b``; a leaf of ``b`` removes the whole subtree of ``a``."""
    out: dict[str, Any] = {}
    for k, v in a.items():
        if k not in b:
            out[k] = v
        elif b[k] and v:
            rest = _subtract(v, b[k])
            if rest:
                out[k] = rest
    return out


def strip_for_fields(obj: Obj) -> Obj:
    meta = {k: v for k, v in (obj.get("metadata") or {}).items() if k not in _STRIPPED_META}
    out = {k: v for k, v in obj.items() if k not in ("apiVersion", "kind", "metadata")}
    if meta:
        out["metadata"] = meta
    return out


def record_update(
    new: Obj,
    old: Obj | None,
    *,
    manager: str,
    operation: str,
    api_version: str,
    now: Callable[[], float],
    skip_status: bool = False,
    subresource: str = "",
    applied: Obj | None = None,
) -> None:
    """Record ``manager``'s write in ``new.metadata.managedFields`` (in place).

    The manager gains the fields the write changed (all fields on a create; with
    ``applied``, an Apply manager owns exactly the applied configuration); other managers
    of the same fields lose them; entries left empty disappear; an entry whose field set did
    not change keeps its old ``time`` so a no-op write stays byte-identical (upstream's
    ``IgnoreManagedFieldsTimestampsTransformer``).
    """
    # TODO(#2): lists are atomic and sets are computed without the schema; the server-side
    # apply field manager (machinery/managedfields.py) replaces this with upstream's model.
    meta = new.setdefault("metadata", {})
    entries: list[dict[str, Any]] = [
        dict(e) for e in (meta.get("managedFields") or []) if isinstance(e, dict)
    ]
    new_view = strip_for_fields(new)
    if skip_status:
        new_view.pop("status", None)
    if old is None:
        changed = fields_v1(new_view)
    else:
        old_view = strip_for_fields(old)
        if skip_status:
            old_view.pop("status", None)
        changed = _changed_fields(new_view, old_view) or {}
    changed = {k: v for k, v in changed.items() if k != "f:apiVersion" and k != "f:kind"}
    out: list[dict[str, Any]] = []
    mine: dict[str, Any] | None = None
    for e in entries:
        same = (e.get("manager"), e.get("operation"), e.get("subresource", ""))
        if same == (manager, operation, subresource):
            mine = e
            continue
        fields = e.get("fieldsV1") or {}
        if changed and fields:
            rest = _subtract(fields, changed)
            if not rest:
                continue
            if rest != fields:
                e["fieldsV1"] = rest
        out.append(e)
    before = (mine or {}).get("fieldsV1") or {}
    if applied is not None:
        # An Apply manager owns exactly what it applied this time.
        fields = fields_v1(strip_for_fields(applied), skip_status=skip_status)
    else:
        fields = _union(before, changed)
    if fields:
        entry: dict[str, Any] = {
            "manager": manager,
            "operation": operation,
            "apiVersion": api_version,
            "time": rfc3339(now()),
            "fieldsType": "FieldsV1",
            "fieldsV1": fields,
        }
        if subresource:
            entry["subresource"] = subresource
        if mine is not None and before == fields and mine.get("apiVersion") == api_version:
            entry["time"] = mine.get("time", entry["time"])
        out.append(entry)
    if out:
        meta["managedFields"] = out
    else:
        meta.pop("managedFields", None)


def manager_name(field_manager: str, user_agent: str) -> str:
    """The field manager: the ``fieldManager`` parameter, else the user agent up to its first
    ``/`` (upstream's ``prefixFromUserAgent``), at most 128 characters."""
    if field_manager:
        return field_manager
    return user_agent.split("/", 1)[0][:128]

"""ObjectMeta rules every kind shares: validation, generated names, timestamps, managedFields.

These are upstream's ``rest.BeforeCreate``/``BeforeUpdate`` and ``ValidateObjectMeta``
rules, kept apart from the store so the store reads as the sequence of steps a write goes
through. Name, label and annotation syntax come from ``registry.validation`` (the shared
validators with upstream's texts); this module adds what only metadata has: finalizer names,
owner references, the fields an update may never change, and the field manager's name
(``managedFields`` themselves are ``machinery.managedfields``'s).
"""

from __future__ import annotations

import datetime
import random
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


# -- field managers ----------------------------------------------------------------------------


def manager_name(field_manager: str, user_agent: str) -> str:
    """The field manager: the ``fieldManager`` parameter, else the user agent up to its first
    ``/`` (upstream's ``prefixFromUserAgent``), at most 128 characters."""
    if field_manager:
        return field_manager
    return user_agent.split("/", 1)[0][:128]


# -- write options -------------------------------------------------------------------------------

FIELD_MANAGER_MAX_LENGTH: Final = 128
_GO_ESCAPES: Final = {
    "\a": "\\a",
    "\b": "\\b",
    "\f": "\\f",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "\v": "\\v",
    '"': '\\"',
    "\\": "\\\\",
}


def go_quote(text: str) -> str:
    """Go's ``strconv.Quote``: printable runes kept, the rest escaped (``\\x01``, ``\\u00ad``)."""
    out = ['"']
    for ch in text:
        if ch in _GO_ESCAPES:
            out.append(_GO_ESCAPES[ch])
        elif ch.isprintable():
            out.append(ch)
        elif ord(ch) < 0x80:
            out.append(f"\\x{ord(ch):02x}")
        elif ord(ch) < 0x10000:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(f"\\U{ord(ch):08x}")
    out.append('"')
    return "".join(out)


def validate_write_options(
    field_manager: str, *, apply: bool | None, force_given: bool
) -> list[FieldError]:
    """upstream's ``ValidateCreateOptions``/``ValidateUpdateOptions``/``ValidatePatchOptions``
    checks on the field manager (``apply`` is None for a create or update, else whether the
    patch is an apply); the caller reports them as ``<Verb>Options.meta.k8s.io "" is invalid``."""
    errs: list[FieldError] = []
    path = Path("fieldManager")
    if apply is False and force_given:
        errs.append(f.forbidden(Path("force"), "may not be specified for non-apply patch"))
    if apply and not field_manager:
        # kubectl defaults it; other clients must name themselves for apply
        errs.append(f.required(path, "is required for apply patch"))
    if len(field_manager.encode()) > FIELD_MANAGER_MAX_LENGTH:
        errs.append(f.too_long(path, FIELD_MANAGER_MAX_LENGTH))
    position = 0
    for ch in field_manager:
        # Go's unicode.IsPrint is Python's isprintable: letters, marks, numbers, punctuation,
        # symbols and the ASCII space; Go reports the byte offset of the rune
        if not ch.isprintable():
            errs.append(
                FieldError(
                    "FieldValueInvalid",
                    str(path),
                    detail=f"{go_quote(field_manager)}: invalid character U+{ord(ch):04X} "
                    f"(at position {position})",
                )
            )
        position += len(ch.encode("utf-8", "surrogatepass"))
    return errs

"""A gateway setup -> a commented TOML profile (tomlkit), fresh or merged into a file.

Each key carries its gateway field as a comment, as the shipped profiles do. Secrets
become ``${VAR}`` placeholders (kept as written when the input already had one; named
after the credential otherwise, e.g. ``${BACKEND_SERVICE_TOKEN_SECRET}``): a literal
secret from the input is never written. Fields rrdev has no key for are kept as
comments. Merging into an existing profile replaces only what the gateway holds and
keeps everything else (rrdev-only keys and sections, comments, rule ids).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import tomlkit
from tomlkit.items import AoT, Table

from rrdev.core.gateway.fields import (
    DEFAULT_EFFECT_FIELD,
    MAPPED_KEYS,
    SECRET_SHAPES,
    auth_type_from_gateway,
    is_secret_key,
    placeholder_name,
)
from rrdev.core.gateway.rule_tables import rule_table, rule_tables_equal, rules_in_table
from rrdev.core.gateway.setup import GatewaySetup
from rrdev.core.model import ENV_REF
from rrdev.core.records import SCOPES

#: gateway field -> profile key, per object (credentialSecret and refs apart).
_PLAIN = {
    "target": {
        "targetName": "name",
        "targetBaseURL": "base_url",
        "targetTestPath": "test_path",
        "targetRegion": "region",
        "targetDefaultRuleEffect": "default_effect",
    },
    "credential": {
        "credentialName": "name",
        "credentialRegion": "region",
        "credentialDefaultRuleEffect": "default_effect",
    },
    "proxy": {
        "proxyName": "name",
        "proxyAlias": "alias",
        "proxyRegion": "region",
        "proxyDefaultRuleEffect": "default_effect",
        "proxyAdditionalHeaders": "additional_headers",
        "proxyActive": "active",
    },
}
#: Fields understood without a key of their own (IDs are the API's, refs are implied).
_CONSUMED = {
    "credentialType",
    "credentialAuthType",
    "credentialSecret",
    "proxyProxyCredentialId",
    "proxyTargetId",
    "proxyTargetCredentialId",
}
#: What a pulled jwtVerify credential gets for write-only fields rrdev cannot read.
_UNKNOWN_VALUES = {
    "jwks_uri": "https://REPLACE-ME.invalid/.well-known/jwks.json",
    "issuer": "https://REPLACE-ME.invalid/",
    "audience": "REPLACE-ME",
}
SECTION_ORDER = ("target", "target_credential", "proxy_credential", "proxy")


@dataclass(frozen=True)
class Section:
    """One profile section built from a payload: values, the gateway field of each key
    (for comments), notes (kept unknown fields, placeholders) and write-only keys whose
    value is unknown (a merge keeps the file's)."""

    values: dict[str, Any] = field(default_factory=dict)
    fields: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    unknown: set[str] = field(default_factory=set)


@dataclass(frozen=True)
class ImportResult:
    text: str
    warnings: tuple[str, ...] = ()


def profile_sections(setup: GatewaySetup, warnings: list[str]) -> dict[str, Section]:
    """The gateway objects of ``setup`` as profile sections (rules apart)."""
    sections = {}
    for ref in SECTION_ORDER:
        body = setup.objects.get(ref)
        if body is not None:
            sections[ref] = _section(ref, body, setup, warnings)
    return sections


def _section(
    ref: str, body: Mapping[str, Any], setup: GatewaySetup, warnings: list[str]
) -> Section:
    kind = "credential" if ref.endswith("credential") else ref
    out = Section()
    for name, value in body.items():
        key = _PLAIN[kind].get(name)
        if key is not None:
            if not (key == "active" and value is True):  # the default, not worth a line
                out.values[key], out.fields[key] = value, name
        elif name not in _CONSUMED:
            out.notes.append(f"gateway field {name} = {_short(value)} (no profile key)")
    if kind == "credential":
        _credential(ref, body, setup, out, warnings)
    return out


def _credential(
    ref: str, body: Mapping[str, Any], setup: GatewaySetup, out: Section, warnings: list[str]
) -> None:
    given = str(body.get("credentialAuthType", "none"))
    auth_type = auth_type_from_gateway(ref, given)
    if auth_type is None:
        out.notes.append(f"credentialAuthType {given!r} has no rrdev equivalent")
        auth_type = given
    out.values["auth_type"], out.fields["auth_type"] = auth_type, "credentialAuthType"
    secret = body.get("credentialSecret")
    shape = SECRET_SHAPES.get((ref, auth_type), ())
    if not isinstance(secret, Mapping):
        if setup.secrets_known and secret is not None:
            warnings.append(f"{ref}: credentialSecret is not an object: ignored")
        secret = {}
    name = str(body.get("credentialName", ref))
    for gw_field, key in shape:
        value = secret.get(gw_field)
        if value is None and setup.secrets_known:
            continue
        out.fields[key] = f"credentialSecret.{gw_field}"
        out.values[key] = _secret_or_value(ref, key, name, gw_field, value, out, warnings)
    known = {f for f, _k in shape}
    for extra in secret:
        if extra not in known:
            out.notes.append(f"credentialSecret.{extra} (no profile key; value not copied)")


def _secret_or_value(
    ref: str, key: str, name: str, gw_field: str, value: Any, out: Section, warnings: list[str]
) -> Any:
    if is_secret_key(f"{ref}.{key}"):
        if isinstance(value, str) and ENV_REF.fullmatch(value):
            return value
        if value is None:  # the API never returns it: a merge keeps the file's placeholder
            out.unknown.add(key)
        placeholder = "${" + placeholder_name(name, gw_field) + "}"
        if value is not None:
            warnings.append(
                f"{ref}.{key}: the input holds a literal secret; written as {placeholder}"
            )
        out.notes.append(f"{key}: export {placeholder[2:-1]}=... (the secret is write-only)")
        return placeholder
    if value is None:  # write-only and not returned by the API: a merge keeps the file's
        out.unknown.add(key)
        out.notes.append(
            f"{key}: credentialSecret is write-only, the gateway never returns it: "
            "fill it in (or pull into your existing profile with --out)"
        )
        return _UNKNOWN_VALUES.get(key, "REPLACE-ME")
    return value


def safe_comment(text: str) -> str:
    """Input text in a comment, on one line: a newline in a hostile field name or value
    would otherwise end the comment and write TOML of its own."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def _short(value: Any) -> str:
    text = tomlkit.item(value).as_string() if value is not None else "null"
    return text if len(text) <= 80 else text[:77] + "..."


# ---------------------------------------------------------------------- fresh file


def profile_text(setup: GatewaySetup) -> ImportResult:
    """A new commented profile for ``setup``."""
    warnings: list[str] = []
    sections = profile_sections(setup, warnings)
    doc = tomlkit.document()
    doc.add(tomlkit.comment(safe_comment(f"rrdev profile imported from {setup.source}.")))
    doc.add(tomlkit.comment("Secrets are ${VAR} placeholders: export them before `rrdev up`."))
    for ref, section in sections.items():
        doc.add(tomlkit.nl())
        doc.add(ref, _table(ref, section, setup))
    for name, value in setup.rrdev_only.items():
        if name in ("auth", "issuer", "checks"):
            doc.add(tomlkit.nl())
            doc.add(name, _plain_item(name, value))
    return ImportResult(tomlkit.dumps(doc), tuple(warnings))


def _table(ref: str, section: Section, setup: GatewaySetup) -> Table:
    table = tomlkit.table()
    for note in section.notes:
        table.add(tomlkit.comment(safe_comment(note)))
    kept = setup.rrdev_only.get(ref, {})
    for key, value in section.values.items():
        if key in kept and key != "rule_ids":
            continue
        table.add(key, _commented(value, section.fields[key]))
    for key, value in kept.items():
        if key != "rule_ids":
            note = "rrdev only" if key != "issuer" else "the gateway gets the first"
            table.add(key, _commented(value, note))
    rules = setup.rules.get(ref, ())  # type: ignore[call-overload]
    if rules:
        ids = kept.get("rule_ids", [])
        table.add("rules", _aot([rule_table(r, _nth(ids, n)) for n, r in enumerate(rules)]))
    return table


def _nth(ids: list[Any], n: int) -> str | None:
    return ids[n] if n < len(ids) and isinstance(ids[n], str) else None


def _aot(tables: list[Table]) -> AoT:
    aot = tomlkit.aot()
    for t in tables:
        aot.append(t)
    return aot


def _commented(value: Any, comment: str) -> Any:
    """``value`` as a TOML item carrying ``comment`` (a bare bool has no comment of its
    own: ``table[key]`` hands back a Python bool)."""
    item = tomlkit.item(_inline(value))
    item.comment(comment)
    return item


def _inline(value: Any) -> Any:
    """Nested values as inline tables and arrays, the way profiles are written."""
    if isinstance(value, Mapping):
        inline = tomlkit.inline_table()
        for k, v in value.items():
            inline.append(k, _inline(v))
        return inline
    if isinstance(value, list):
        array = tomlkit.array()
        array.extend(_inline(v) for v in value)
        return array
    return value


def _plain_item(name: str, value: Any) -> Any:
    if isinstance(value, list) and all(isinstance(v, Mapping) for v in value):
        return _aot([_plain_table(v) for v in value])
    return _plain_table(value) if isinstance(value, Mapping) else value


def _plain_table(value: Mapping[str, Any]) -> Table:
    table = tomlkit.table()
    for k, v in value.items():
        if isinstance(v, list) and v and all(isinstance(x, Mapping) for x in v):
            table.add(k, _aot([_plain_table(x) for x in v]))
        else:
            table.add(k, _inline(v))
    return table


# --------------------------------------------------------------------------- merge


def merged_text(existing: str, setup: GatewaySetup) -> ImportResult:
    """``existing`` profile text with the gateway's part replaced by ``setup``'s: keys
    the gateway holds are set (or removed), everything else is kept as written."""
    warnings: list[str] = []
    doc = tomlkit.parse(existing)
    for ref, section in profile_sections(setup, warnings).items():
        if ref not in doc:
            doc.add(tomlkit.nl())
            doc.add(ref, _table(ref, section, setup))
            continue
        _merge_section(doc[ref], ref, section)  # type: ignore[arg-type]
        _merge_rules(doc[ref], ref, setup)  # type: ignore[arg-type]
    return ImportResult(tomlkit.dumps(doc), tuple(warnings))


def _merge_section(table: Table, ref: str, section: Section) -> None:
    for key in MAPPED_KEYS[ref]:
        if key == "rules" or key in section.unknown:
            continue
        if key not in section.values:
            if key in table and not _defaulted(ref, key, table):
                del table[key]
            continue
        new = section.values[key]
        if (
            key == "issuer"
            and isinstance(table.get(key), list)
            and table[key].unwrap()[:1] == [new]
        ):
            continue  # exported as the first of several: the file's list is the truth
        if key not in table or table[key].unwrap() != new:
            table[key] = _inline(new)


def _defaulted(ref: str, key: str, table: Table) -> bool:
    """default_effect left out of a payload means the default: keep the file's line
    when it says the same."""
    return (
        key == "default_effect"
        and DEFAULT_EFFECT_FIELD.get(ref) is not None
        and (table[key] == "allow")
    )


def _merge_rules(table: Table, ref: str, setup: GatewaySetup) -> None:
    if ref not in SCOPES:
        return
    incoming = list(setup.rules.get(ref, ()))  # type: ignore[call-overload]
    existing = rules_in_table(table)
    if rule_tables_equal(existing, incoming):
        return
    ids = _ids_by_content(existing, incoming)
    if "rules" in table:
        del table["rules"]
    if incoming:
        table.add("rules", _aot([rule_table(r, ids[n]) for n, r in enumerate(incoming)]))


def _ids_by_content(
    existing: list[Mapping[str, Any]], incoming: list[Mapping[str, Any]]
) -> list[str | None]:
    """A rule that did not change keeps its id (so checks naming it still work)."""
    from rrdev.core.gateway.rule_tables import normal_rule, rule_body_of_table

    pool = [(normal_rule(rule_body_of_table(e)), e.get("id")) for e in existing]
    ids: list[str | None] = []
    for body in incoming:
        key = normal_rule(body)
        match = next((n for n, (k, _i) in enumerate(pool) if k == key), None)
        ids.append(None if match is None else pool.pop(match)[1])
    return ids

"""Rules between the gateway's JSON and the profile's TOML tables, and a normal form to
compare them (the gateway nests ``path``, the profile may not; ``present`` is
``must_exist``...). Rules have no update in the gateway: equal normal forms are the
same rule, anything else is another rule."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import tomlkit
from tomlkit.items import Table

RULE_FIELDS = ("effect", "methods", "path", "headers", "query", "token", "priority", "notes")
_PAIRS = (("headers", "name"), ("query", "name"), ("token", "claim"))
_PRESENCE = {"present": "must_exist", "absent": "must_absent"}


def rule_table(body: Mapping[str, Any], rule_id: str | None) -> Table:
    """A gateway rule body as a ``[[scope.rules]]`` table (the profile's short shapes)."""
    table = tomlkit.table()
    for name in body:
        if name not in RULE_FIELDS:
            note = f"gateway field {name} = {body[name]!r} (no profile key)"
            table.add(tomlkit.comment("".join(c if c.isprintable() else "?" for c in note)))
    if rule_id is not None:
        table.add("id", rule_id)
    table.add("effect", body.get("effect", "allow"))
    if body.get("methods"):
        table.add("methods", list(body["methods"]))
    if body.get("path") is not None:
        table.add("path", _inline(_path_toml(body["path"])))
    for name, name_key in _PAIRS:
        if body.get(name):
            array = tomlkit.array()
            array.extend(_inline(_pair_toml(c, name_key)) for c in body[name])
            table.add(name, array)
    if body.get("priority"):
        table.add("priority", body["priority"])
    if body.get("notes"):
        table.add("notes", body["notes"])
    return table


def _inline(value: Mapping[str, Any]) -> Any:
    inline = tomlkit.inline_table()
    for k, v in value.items():
        inline.append(k, _inline(v) if isinstance(v, Mapping) else v)
    return inline


def _path_toml(path: Any) -> dict[str, Any]:
    source, flags = _pattern(
        path.get("path", path.get("pattern")) if isinstance(path, Mapping) else path
    )
    out: dict[str, Any] = {"pattern": source}
    if flags:
        out["flags"] = flags
    if isinstance(path, Mapping) and path.get("presence"):
        out["presence"] = path["presence"]
    return out


def _pair_toml(c: Mapping[str, Any], name_key: str) -> dict[str, Any]:
    out: dict[str, Any] = {name_key: _pattern_toml(c.get(name_key))}
    if c.get("value") is not None:
        out["value"] = _pattern_toml(c["value"])
    if c.get("presence"):
        out["presence"] = c["presence"]
    return out


def _pattern_toml(value: Any) -> Any:
    source, flags = _pattern(value)
    return {"pattern": source, "flags": flags} if flags else source


def _pattern(value: Any, outer_flags: str = "") -> tuple[str, str]:
    """``"re"`` or ``{"pattern": "re", "flags": "i"}`` -> (source, flags)."""
    if isinstance(value, Mapping):
        return str(value.get("pattern", "")), str(value.get("flags", "")) + outer_flags
    return str(value), outer_flags


# ------------------------------------------------------------------- normal form


def rules_in_table(table: Table) -> list[Mapping[str, Any]]:
    rules = table.get("rules")
    return list(rules.unwrap()) if rules is not None else []


def rule_body_of_table(raw: Mapping[str, Any]) -> dict[str, Any]:
    """A profile rule table (any accepted shape) as a gateway-like body."""
    return {k: v for k, v in raw.items() if k in RULE_FIELDS}


def normal_rule(body: Mapping[str, Any]) -> tuple[Any, ...]:
    """A hashable form in which the gateway's and the profile's spellings agree."""
    path = body.get("path")
    return (
        body.get("effect"),
        tuple(sorted(str(m).upper() for m in body.get("methods") or ())),
        None if path is None else _normal_path(path),
        *(
            tuple(_normal_pair(c, key, name == "headers") for c in body.get(name) or ())
            for name, key in _PAIRS
        ),
        int(body.get("priority") or 0),
        body.get("notes") or "",
    )


def _normal_path(path: Any) -> tuple[Any, ...]:
    if not isinstance(path, Mapping):
        return (_normal_pattern(path), "must_exist")
    inner = path.get("path", path.get("pattern"))
    presence = _PRESENCE.get(path.get("presence", ""), path.get("presence") or "must_exist")
    return (_normal_pattern(inner, str(path.get("flags", ""))), presence)


def _normal_pair(c: Mapping[str, Any], key: str, header: bool) -> tuple[Any, ...]:
    flags = str(c.get("flags", ""))
    name = _normal_pattern(c.get(key), flags + ("i" if header else ""))
    value = None if c.get("value") is None else _normal_pattern(c["value"], flags)
    presence = _PRESENCE.get(c.get("presence", ""), c.get("presence") or "must_exist")
    return (name, value, presence)


def _normal_pattern(value: Any, outer: str = "") -> tuple[str, str]:
    source, flags = _pattern(value, outer)
    return source, "".join(sorted(set(flags)))


def rule_tables_equal(existing: list[Mapping[str, Any]], incoming: list[Mapping[str, Any]]) -> bool:
    """The same rules, in any order: the gateway lists them in creation order, which
    ``push`` chooses for safety, so the file's order is kept when nothing else differs."""
    mine = sorted((normal_rule(rule_body_of_table(e)) for e in existing), key=repr)
    return mine == sorted((normal_rule(b) for b in incoming), key=repr)

"""What ``import`` and ``pull`` read: a gateway setup (one proxy, its objects, its rules)
from an ``export --json`` document or from the API's list answers. Pure: the caller
reads the file or the API; malformed input is a ``GatewayFormatError`` naming where.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from rrdev.core.errors import RrdevError
from rrdev.core.records import SCOPES, Scope

EXPORT_FORMAT = "rrdev.gateway-export/1"
OBJECT_REFS = ("target", "target_credential", "proxy_credential", "proxy")


class GatewayFormatError(RrdevError):
    """An import file (or an API answer) that is not a gateway setup rrdev can read."""

    exit_code = 3


@dataclass(frozen=True)
class GatewaySetup:
    """One proxy as the gateway holds it: ``objects`` by ref (``target``, ...) and each
    scope's rule bodies; ``rrdev_only`` is what an export carried beside the payloads;
    ``secrets_known`` is false when bodies came from the API (credentialSecret is
    write-only, so its fields are unknown rather than absent)."""

    objects: Mapping[str, Mapping[str, Any]]
    rules: Mapping[Scope, tuple[Mapping[str, Any], ...]]
    rrdev_only: Mapping[str, Any] = field(default_factory=dict)
    source: str = ""
    secrets_known: bool = True


def setup_from_export(doc: Any, source: str) -> GatewaySetup:
    """``rrdev export --json``'s document -> a setup."""
    if not isinstance(doc, Mapping) or not isinstance(doc.get("payloads"), list):
        raise GatewayFormatError(
            f"{source}: not an rrdev export (expected an object with a 'payloads' list)",
            "write one with: rrdev export PROFILE --json > FILE",
        )
    objects: dict[str, Mapping[str, Any]] = {}
    rules: dict[Scope, list[Mapping[str, Any]]] = {s: [] for s in SCOPES}
    for n, entry in enumerate(doc["payloads"]):
        where = f"{source}: payloads[{n}]"
        if not isinstance(entry, Mapping) or not isinstance(entry.get("body"), Mapping):
            raise GatewayFormatError(f"{where}: expected an object with a 'body' object")
        scope = entry.get("scope")
        if scope is not None:
            if scope not in SCOPES:
                raise GatewayFormatError(f"{where}.scope: unknown scope {scope!r}")
            rules[scope].append(entry["body"])
        elif entry.get("ref") in OBJECT_REFS:
            objects[entry["ref"]] = entry["body"]
        else:
            raise GatewayFormatError(
                f"{where}.ref: expected one of {', '.join(OBJECT_REFS)}, got {entry.get('ref')!r}"
            )
    _need_proxy_objects(objects, source)
    rrdev_only = doc.get("rrdev_only") or {}
    if not isinstance(rrdev_only, Mapping):
        raise GatewayFormatError(f"{source}: rrdev_only: expected an object")
    return GatewaySetup(objects, {s: tuple(r) for s, r in rules.items()}, rrdev_only, source)


def setup_from_lists(
    lists: Mapping[str, Any], source: str, proxy_name: str | None = None
) -> GatewaySetup:
    """The API's list answers -> the setup of one proxy.

    ``lists`` holds ``targets``, ``credentials`` and ``proxies`` (each the API's list,
    wrapped or not) and ``rules``: ``{object id: [rule, ...]}``. ``proxy_name`` picks
    the proxy when there are several.
    """
    proxies = _items(lists, "proxies", source)
    proxy = _pick_proxy(proxies, proxy_name, source)
    by_id = {
        **{_id_of(t, "target"): t for t in _items(lists, "targets", source)},
        **{_id_of(c, "credential"): c for c in _items(lists, "credentials", source)},
    }
    objects: dict[str, Mapping[str, Any]] = {"proxy": proxy}
    for ref, id_field in (
        ("target", "proxyTargetId"),
        ("target_credential", "proxyTargetCredentialId"),
        ("proxy_credential", "proxyProxyCredentialId"),
    ):
        ident = proxy.get(id_field)
        if ident is None:
            continue
        if ident not in by_id:
            raise GatewayFormatError(
                f"{source}: proxy {proxy.get('proxyName')!r} names {id_field} {ident!r}, "
                "which is not in the lists"
            )
        objects[ref] = by_id[ident]
    _need_proxy_objects(objects, source)
    listed = lists.get("rules") or {}
    rules = {
        scope: tuple(listed.get(_id_of(objects[ref], _kind(ref)), ()))
        if (ref := scope) in objects
        else ()
        for scope in SCOPES
    }
    return GatewaySetup(objects, rules, {}, source, secrets_known=False)


def _kind(ref: str) -> str:
    return "credential" if ref.endswith("credential") else ref


def _id_of(item: Mapping[str, Any], kind: str) -> Any:
    """The API's ID field: ``targetId``, ``credentialId``, ``proxyId`` (or ``id``)."""
    return item.get(f"{kind}Id", item.get("id"))


def _items(lists: Mapping[str, Any], name: str, source: str) -> list[Mapping[str, Any]]:
    value = lists.get(name, [])
    if isinstance(value, Mapping):  # the API wraps lists: {"targets": [...], "message": ...}
        value = value.get(name, [])
    if not isinstance(value, list) or not all(isinstance(v, Mapping) for v in value):
        raise GatewayFormatError(f"{source}: {name}: expected a list of objects")
    return value


def _pick_proxy(
    proxies: list[Mapping[str, Any]], name: str | None, source: str
) -> Mapping[str, Any]:
    names = ", ".join(repr(p.get("proxyName")) for p in proxies) or "none"
    if name is not None:
        for proxy in proxies:
            if proxy.get("proxyName") == name:
                return proxy
        raise GatewayFormatError(f"{source}: no proxy named {name!r} (there are: {names})")
    if len(proxies) != 1:
        raise GatewayFormatError(
            f"{source}: {len(proxies)} proxies (a profile is one proxy): {names}",
            "pick one with --proxy NAME",
        )
    return proxies[0]


def _need_proxy_objects(objects: Mapping[str, Any], source: str) -> None:
    for ref in ("target", "proxy_credential", "proxy"):
        if ref not in objects:
            raise GatewayFormatError(f"{source}: no {ref} payload (a profile needs one)")

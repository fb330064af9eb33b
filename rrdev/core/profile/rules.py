"""``rules = [...]`` of every scope -> ``Rule`` values. Regular expressions are
compiled here (for RE2: linear time), so a bad pattern, or one that needs backtracking,
fails at load with its file, line and key, never on the first request; rule ids are
unique across the profile."""

from __future__ import annotations

from typing import Any, NoReturn

from rrdev.core.errors import ProfileError
from rrdev.core.model import PairCondition, PathCondition, Pattern, Presence, Rule
from rrdev.core.profile.reading import EFFECTS, _Ctx, _did_you_mean, _kind, _method, _Table
from rrdev.core.records import Scope
from rrdev.core.regex import FLAGS, PatternRefused

PRESENCE_SPELLINGS: dict[str, Presence] = {
    "must_exist": "must_exist",
    "must_absent": "must_absent",
    "present": "must_exist",  # the gateway's spellings
    "absent": "must_absent",
}
RULE_KEYS = ("id", "effect", "methods", "priority", "notes", "path", "headers", "query", "token")
PATH_KEYS = ("pattern", "path", "flags", "presence")
PATTERN_KEYS = ("pattern", "flags")


def _rules(t: _Table, scope: Scope) -> tuple[Rule, ...]:
    return tuple(_rule(r, scope, n) for n, r in enumerate(t.children("rules", RULE_KEYS)))


def _rule(t: _Table, scope: Scope, index: int) -> Rule:
    rule_id = t.opt_str("id")
    if rule_id is not None and not rule_id.strip():
        t.fail("id", "must not be empty")
    try:
        return Rule(
            scope=scope,
            index=index,
            effect=t.choice("effect", EFFECTS, "") if t.has("effect") else _no_effect(t),  # type: ignore[arg-type]
            id=rule_id,
            methods=tuple(
                _method(t, "methods", m, f"{t.at('methods')}[{n}]")
                for n, m in enumerate(t.str_list("methods"))
            ),
            path=_path_condition(t.ctx, t.at("path"), t.data["path"]) if t.has("path") else None,
            headers=_pairs(t, "headers", "name", ignore_case_names=True),
            query=_pairs(t, "query", "name"),
            token=_pairs(t, "token", "claim"),
            priority=t.integer("priority", 0, 0, 1000),
            notes=t.str_or("notes", ""),
            line=t.ctx.line(t.key),
        )
    except ProfileError as exc:
        if rule_id is None:  # the dotted key already names it as scope.rules[index]
            raise
        raise ProfileError(
            f"{exc.detail} (rule {rule_id!r})",
            file=exc.file,
            line=exc.line,
            key=exc.key,
            hint=exc.hint,
        ) from None


def _no_effect(t: _Table) -> NoReturn:
    t.fail("effect", "missing required key 'effect'", "effect = 'allow' or effect = 'deny'")


def _flags(ctx: _Ctx, key: str, value: Any) -> str:
    if not isinstance(value, str):
        ctx.fail(key, f"expected a string, got {_kind(value)}")
    for letter in value:
        if letter not in FLAGS:
            ctx.fail(
                key,
                f"unknown regular-expression flag {letter!r} in {value!r}",
                "flags combine i (ignore case), m (multi-line) and s (dot matches newline)",
            )
    return value


def _pattern(ctx: _Ctx, key: str, value: Any, flags: str = "") -> Pattern:
    """``"regex"`` or ``{ pattern = "regex", flags = "i" }``; ``flags`` (from the
    enclosing condition, or "i" for header names) are added to the pattern's own."""
    if isinstance(value, dict):
        t = _Table.make(ctx, key, value, PATTERN_KEYS)
        source = t.opt_str("pattern")
        if source is None:
            t.fail("pattern", "missing required key 'pattern'")
        own = _flags(ctx, t.at("flags"), value.get("flags", ""))
        return _compile(ctx, t.at("pattern"), source, own + flags)
    if not isinstance(value, str):
        ctx.fail(key, f"expected a string or {{ pattern = ... }}, got {_kind(value)}")
    return _compile(ctx, key, value, flags)


def _compile(ctx: _Ctx, key: str, source: str, letters: str) -> Pattern:
    """Compiled for RE2 (linear time); a pattern it refuses fails here with the key."""
    flags = "".join(letter for letter in FLAGS if letter in letters)
    try:
        return Pattern(source, flags)
    except PatternRefused as exc:
        ctx.fail(key, exc.message, exc.hint)


def _presence(t: _Table) -> Presence:
    value = t.str_or("presence", "must_exist")
    if value not in PRESENCE_SPELLINGS:
        options = tuple(PRESENCE_SPELLINGS)
        t.fail(
            "presence",
            f"expected 'must_exist' or 'must_absent', got {value!r}{_did_you_mean(value, options)}",
            "the gateway's 'present' and 'absent' are accepted too",
        )
    return PRESENCE_SPELLINGS[value]


def _path_condition(ctx: _Ctx, key: str, value: Any) -> PathCondition:
    """``path = "regex"``, ``{ pattern = ..., presence = ... }`` or the gateway's
    ``{ path = { pattern = ... }, presence = ... }``."""
    if isinstance(value, str):
        return PathCondition(_compile(ctx, key, value, ""))
    t = _Table.make(ctx, key, value, PATH_KEYS)
    if t.has("pattern") == t.has("path"):
        t.fail(
            "pattern",
            "expected exactly one of 'pattern' or 'path'"
            if t.has("path")
            else "missing required key 'pattern'",
        )
    flags = _flags(ctx, t.at("flags"), t.data.get("flags", ""))
    name = "pattern" if t.has("pattern") else "path"
    return PathCondition(_pattern(ctx, t.at(name), t.data[name], flags), _presence(t))


def _pairs(
    t: _Table, name: str, name_key: str, *, ignore_case_names: bool = False
) -> tuple[PairCondition, ...]:
    """``headers``/``query``/``token``: a list of ``{ <name_key>, value, presence, flags }``."""
    allowed = (name_key, "value", "presence", "flags")
    conditions = []
    for c in t.children(name, allowed):
        if not c.has(name_key):
            c.fail(name_key, f"missing required key {name_key!r}")
        flags = _flags(c.ctx, c.at("flags"), c.data.get("flags", ""))
        name_flags = flags + ("i" if ignore_case_names else "")
        value = c.data.get("value")
        conditions.append(
            PairCondition(
                name=_pattern(c.ctx, c.at(name_key), c.data[name_key], name_flags),
                value=None if value is None else _pattern(c.ctx, c.at("value"), value, flags),
                presence=_presence(c),
            )
        )
    return tuple(conditions)


def _check_unique_rule_ids(ctx: _Ctx, rules: tuple[Rule, ...]) -> None:
    seen: dict[str, Rule] = {}
    for rule in sorted(rules, key=lambda r: r.line or 0):
        if rule.id is None:
            continue
        first = seen.setdefault(rule.id, rule)
        if first is rule:
            continue
        first_key = f"{first.scope}.rules[{first.index}]"
        key = f"{rule.scope}.rules[{rule.index}].id"
        ctx.fail(
            key,
            f"duplicate rule id {rule.id!r}: first at line {ctx.line(first_key + '.id')} "
            f"({first_key}), again at line {ctx.line(key)}",
            "rule ids must be unique across the whole profile",
        )

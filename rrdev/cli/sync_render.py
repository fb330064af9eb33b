"""The work behind ``rrdev export/import/pull/push`` (``cli/sync.py`` declares them):
reading inputs, writing profiles and files, printing plans and reports."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import typer

from rrdev.cli.common import stderr_console
from rrdev.core.errors import RrdevError

ALIAS_URL = "https://{alias}.requestrocket.io"


def _warn(message: str) -> None:
    from rich.markup import escape

    stderr_console().print(f"[bold yellow]warning:[/] {escape(message)}", highlight=False)


def _note(message: str) -> None:
    from rich.markup import escape

    stderr_console().print(escape(message), highlight=False)


# ------------------------------------------------------------------------ export


def _load_with_raw(name: str | None) -> tuple[Any, dict[str, Any]]:
    import tomlkit

    from rrdev.cli.options import discover
    from rrdev.core.profile import load_profile

    path = discover(name, positional=True)
    profile = load_profile(path)
    raw = tomlkit.parse(path.read_text(encoding="utf-8")).unwrap()
    return profile, raw


def _export(name: str | None, with_secrets: bool) -> tuple[Any, Any]:
    from rrdev.core.gateway.payloads import export_profile

    profile, raw = _load_with_raw(name)
    env = dict(os.environ) if with_secrets else None
    return profile, export_profile(profile, raw, env)


def run_export(name: str | None, out: str | None, json_out: bool, with_secrets: bool) -> None:
    from rrdev.core.gateway.payloads import export_document

    profile, export = _export(name, with_secrets)
    if with_secrets:
        _warn("--with-secrets: the output holds secret values; do not commit or paste it")
    for warning in export.warnings:
        _warn(warning)
    document = export_document(export, profile.path)
    if out is not None:
        _write_payload_files(Path(out), document, with_secrets)
    elif json_out:
        sys.stdout.write(json.dumps(document, indent=2) + "\n")
    else:
        sys.stdout.write(_export_text(document))


def _export_text(document: dict[str, Any]) -> str:
    lines = [f"# gateway payloads for {document['source']}, in the order to create them."]
    lines.append('# {"$ref": "<ref>"} stands for the ID the API gives that payload.')
    for n, entry in enumerate(document["payloads"], 1):
        rule = f" ({entry['rule_id']})" if entry.get("rule_id") else ""
        lines.append(f"\n# {n}. {entry['ref']}{rule}: {entry['method']} {entry['path']}")
        lines.append(json.dumps(entry["body"], indent=2))
    rrdev_only = _rrdev_only_keys(document["rrdev_only"])
    if rrdev_only:
        lines.append(f"\n# not exported (rrdev only): {', '.join(rrdev_only)}")
    return "\n".join(lines) + "\n"


def _rrdev_only_keys(kept: dict[str, Any]) -> list[str]:
    keys = []
    for section, value in kept.items():
        if isinstance(value, dict) and section not in ("auth", "issuer"):
            keys += [
                f"{section}.{k}" if k != "rule_ids" else f"{section}.rules[].id" for k in value
            ]
        else:
            keys.append(section)
    return keys


def _write_payload_files(folder: Path, document: dict[str, Any], secret: bool) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for n, entry in enumerate(document["payloads"], 1):
        stem = entry["ref"].replace("[", ".").replace("]", "").replace("_", "-")
        path = folder / f"{n:02d}-{stem}.json"
        path.write_text(json.dumps(entry["body"], indent=2) + "\n", encoding="utf-8")
        if secret:
            path.chmod(0o600)
        sys.stdout.write(f"{path}  {entry['method']} {entry['path']}\n")


# ------------------------------------------------------------------ import, pull


def run_import(file: str, out: str | None, proxy: str | None) -> None:
    from rrdev.core.gateway.setup import setup_from_export, setup_from_lists

    data = _read_json(file)
    source = "stdin" if file == "-" else file
    if isinstance(data, dict) and "payloads" in data:
        setup = setup_from_export(data, source)
    else:
        setup = setup_from_lists(data if isinstance(data, dict) else {}, source, proxy)
    _write_profile(setup, out)


def _read_json(file: str) -> Any:
    try:
        text = sys.stdin.read() if file == "-" else Path(file).read_text(encoding="utf-8")
    except OSError as exc:
        raise RrdevError(f"cannot read {file}: {exc.strerror or exc}") from None
    try:
        return json.loads(text)
    except ValueError as exc:
        raise _InputError(
            f"{file}: not JSON ({exc})", "rrdev import reads `export --json` output"
        ) from None


class _InputError(RrdevError):
    exit_code = 3


def _write_profile(setup: Any, out: str | None) -> None:
    from rrdev.core.gateway.document import merged_text, profile_text

    target = Path(out) if out else None
    merging = target is not None and target.is_file()
    if merging:
        result = merged_text(target.read_text(encoding="utf-8"), setup)  # type: ignore[union-attr]
    else:
        result = profile_text(setup)
    for warning in result.warnings:
        _warn(warning)
    _check_loads(result.text, out or "<stdout>")
    if target is None:
        sys.stdout.write(result.text)
        return
    target.write_text(result.text, encoding="utf-8")
    _note(f"{'updated' if merging else 'wrote'} {target}")


def _check_loads(text: str, name: str) -> None:
    from rrdev.core.errors import ProfileError
    from rrdev.core.profile import parse_profile

    try:
        parse_profile(text, name)
    except ProfileError as exc:
        _warn(f"the profile does not load yet: {exc} (edit it, then run rrdev validate)")


def _api(api: str | None, client_id: str, token_env: str) -> Any:
    from rrdev.clients.gateway import API_ENV, DEFAULT_API, GatewayApi, GatewayAuthError

    token = os.environ.get(token_env, "")
    if not token:
        raise GatewayAuthError(
            f"no API token: {token_env} is not set",
            f"export {token_env}=... (a personal API token from the gateway's console)",
        )
    base = api or os.environ.get(API_ENV) or DEFAULT_API
    return GatewayApi(base, token, client_id)


def run_pull(
    client_id: str, proxy: str | None, out: str | None, api: str | None, token_env: str
) -> None:
    from rrdev.clients.gateway_sync import fetch_lists
    from rrdev.core.gateway.setup import setup_from_lists

    client = _api(api, client_id, token_env)
    try:
        lists = fetch_lists(client)
    finally:
        client.close()
    setup = setup_from_lists(lists, f"the gateway (client {client_id})", proxy)
    _write_profile(setup, out)


# -------------------------------------------------------------------------- push


def run_push(
    name: str | None,
    client_id: str,
    *,
    yes: bool,
    dry_run: bool,
    send_secrets: bool,
    api: str | None,
    token_env: str,
) -> None:
    from rrdev.clients.gateway_sync import apply_plan, read_remote, resolve_secrets
    from rrdev.core.gateway.plan import make_plan

    profile, export = _export(name, with_secrets=False)
    for warning in export.warnings:
        _warn(warning)
    client = _api(api, client_id, token_env)
    try:
        plan = make_plan(export, read_remote(client, export), send_secrets=send_secrets)
        sys.stdout.write(plan_text(plan, profile.path, client_id))
        if not plan.changes or dry_run:
            return
        _confirm(yes)
        secrets = resolve_secrets(plan, os.environ, profile.path)
        report = apply_plan(client, plan, secrets)
    finally:
        client.close()
    if report.error is not None:
        sys.stdout.write(_failure_text(report))
        raise report.error
    sys.stdout.write(f"applied {len(report.applied)} change(s).\n")
    alias = profile.proxy.alias
    if alias:
        url = ALIAS_URL.format(alias=alias)
        _note(f"verify the deployed gateway: rrdev check {profile.path} --against {url}")


def _confirm(yes: bool) -> None:
    if yes:
        return
    if not sys.stdin.isatty():
        raise RrdevError(
            "push needs a confirmation and stdin is not a terminal",
            "review the plan (--dry-run), then run again with --yes",
        )
    if not typer.confirm("apply this plan?", default=False):
        raise typer.Exit(1)


_LABELS = {"create": "create", "update": "update", "unchanged": "unchanged", "delete": "delete"}


def plan_text(plan: Any, source: str, client_id: str) -> str:
    replaced = {s.replaces for s in plan.steps if s.replaces}
    lines = [f"push plan: {source} -> client {client_id}"]
    for step in plan.steps:
        if step.action == "delete" and step.remote_id in replaced:
            continue  # shown with the create that replaces it
        lines.append("  " + _step_line(step))
    counts: dict[str, int] = {}
    for step in plan.steps:
        counts[step.action] = counts.get(step.action, 0) + 1
    summary = ", ".join(f"{counts[a]} {a}" for a in _LABELS if a in counts)
    lines.append(f"{summary}." if plan.changes else f"{summary}: nothing to do.")
    return "\n".join(lines) + "\n"


def _step_line(step: Any) -> str:
    what = _what(step)
    label = "replace" if step.replaces else _LABELS[step.action]
    line = f"{label:<10} {what}"
    if step.changes and step.action == "update":
        line += f": {', '.join(c for c in step.changes if c != 'credentialSecret')}".rstrip(": ")
    if step.replaces:
        line += f" (deletes rule {step.replaces} and creates it again: rules have no update)"
    if step.secret == "send":
        line += " | credentialSecret: will be sent"
    elif step.secret == "keep":
        line += " | credentialSecret: unchanged: write-only, pass --send-secrets to replace"
    return line


def _what(step: Any) -> str:
    if step.scope is not None:
        return f"rule {step.scope} {step.name}"
    kind = {"targets": "target", "credentials": "credential", "proxies": "proxy"}[step.collection]
    if step.ref.endswith("credential"):
        kind = f"{step.ref.replace('_', ' ')}"
    return f"{kind} {step.name}"


def _failure_text(report: Any) -> str:
    lines = ["push stopped: a call failed."]
    lines += [f"  applied:     {_what(s)} ({s.action})" for s in report.applied]
    lines += [f"  not applied: {_what(s)} ({s.action})" for s in report.not_applied]
    lines.append("run push again to finish: it starts from what the gateway now holds.")
    return "\n".join(lines) + "\n"

"""``rrdev init``, ``rrdev validate`` and ``rrdev check``: write, lint and test profiles.

``check``'s report is ``rrdev.cli.check``'s and its run ``rrdev.checks.engine``'s, both
imported only when the command runs.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from rrdev.cli.common import fail, friendly, stderr_console, stdout_console
from rrdev.cli.options import (
    AtOpt,
    JsonOpt,
    JwksOpt,
    OfflineOpt,
    ProfilesArg,
    ProfilesOpt,
    parse_time,
    profile_paths,
)

__all__ = ["check", "init", "validate"]


@friendly
def validate(
    profiles: ProfilesArg = None,
    profile_opts: ProfilesOpt = None,
    strict: Annotated[bool, typer.Option("--strict", help="Unset ${VARS} are errors.")] = False,
    json_out: JsonOpt = False,
    schema: Annotated[
        bool,
        typer.Option("--schema", help="Print the profiles' JSON Schema (draft 2020-12) and exit."),
    ] = False,
) -> None:
    """Lint profiles: syntax, types, regexes, rule ids; unset ${VARS} are warnings.

    Exit code 0 when every profile is usable, 3 otherwise; 1 when only [[checks]]
    entries have problems (the proxy runs; `rrdev check` fails those checks). Each
    error comes with its hint (``hints`` in the JSON, one per error, "" when there is
    none). --schema prints the JSON Schema that editors check profiles with (see the
    #:schema line).
    """
    if schema:
        from rrdev.cli.schema import schema_text

        sys.stdout.write(schema_text())
        return
    from rrdev.core.errors import ProfileError
    from rrdev.core.profile import check_problems, load_profile, profile_warnings

    paths = profile_paths(profiles, profile_opts)
    results, failed, checks_failed = [], False, False
    for path in paths:
        entry: dict[str, Any] = {"profile": str(path), "errors": [], "hints": [], "warnings": []}
        try:
            prof = load_profile(path)
            entry["warnings"] = [str(w) for w in profile_warnings(prof)]
            entry["rules"] = len(prof.all_rules())
            problems = check_problems(prof)
            entry["errors"] += [f"{p} (this check cannot run)" for p in problems]
            entry["hints"] += [p.hint for p in problems]
            checks_failed |= bool(problems)
            entry["notes"] = _profile_notes(prof)
        except ProfileError as exc:
            entry["errors"].append(str(exc))
            entry["hints"].append(exc.hint)  # "" when there is none
            failed = True
        failed |= strict and bool(entry["warnings"])
        results.append(entry)
    _print_validation(results, json_out)
    raise typer.Exit(3 if failed else 1 if checks_failed else 0)


def _rules_count(count: int) -> str:
    return f"{count} rule" if count == 1 else f"{count} rules"


def _print_validation(results: list[dict[str, Any]], json_out: bool) -> None:
    if json_out:
        sys.stdout.write(json.dumps(results, indent=2) + "\n")
        return
    from rich.text import Text

    out = stdout_console()
    for entry in results:  # Text, not markup: messages quote the user's own "[...]"
        if entry["errors"]:
            out.print(Text.assemble(("✗ ", "red"), entry["profile"]))
            for error, hint in zip(entry["errors"], entry["hints"], strict=True):
                out.print(Text.assemble(("  error: ", "red"), error))
                if hint:
                    out.print(Text.assemble(("  hint: ", "cyan"), hint))
        else:
            out.print(
                Text.assemble(
                    ("✓ ", "green"), f"{entry['profile']} ({_rules_count(entry['rules'])})"
                )
            )
        for warning in entry["warnings"]:
            out.print(Text.assemble(("  warning: ", "yellow"), warning))
        for note in entry.get("notes", ()):
            out.print(Text.assemble(("  note: ", "cyan"), note))


def _profile_notes(prof: Any) -> list[str]:
    """What validate says about a valid profile that is worth knowing (discovery)."""
    from rrdev.core.oidc import discovery_note

    note = discovery_note(prof.proxy_credential)
    return [note] if note else []


@friendly
def check(
    profiles: ProfilesArg = None,
    profile_opts: ProfilesOpt = None,
    live: Annotated[
        bool,
        typer.Option("--live", help="Run the proxy in-process and send each check to the target."),
    ] = False,
    against: Annotated[
        str | None,
        typer.Option(
            "--against", metavar="URL", help="Send each check to this running proxy or gateway."
        ),
    ] = None,
    offline: OfflineOpt = False,
    target: Annotated[
        str | None,
        typer.Option("--target", metavar="URL", help="With --live: forward to this base URL."),
    ] = None,
    jwks: JwksOpt = None,
    json_out: JsonOpt = False,
    junit: Annotated[
        str | None, typer.Option("--junit", metavar="FILE", help="Also write JUnit XML here.")
    ] = None,
    require_coverage: Annotated[
        bool,
        typer.Option("--require-coverage", help="Fail when a rule decides no check."),
    ] = False,
    at: AtOpt = None,
) -> None:
    """Run the profiles' smoke checks: expected answers (denials too) tested like code.

    Default: a dry run (verification and rules, nothing forwarded). --live runs the
    proxy in-process in front of the real target; --against URL asks a running proxy
    or the deployed gateway. Exit code: 0 all passed, 1 a check failed (or a rule is
    unexercised with --require-coverage), 3 profile error, 4 network error.

    Example (CI, no secrets): rrdev check --offline profiles/*.toml --junit report.xml
    """
    from rrdev.checks.model import CheckOptions
    from rrdev.cli.check import run_check_command

    if live and against:
        raise fail("--live and --against cannot be combined", "pick one")
    options = CheckOptions(
        mode="live" if live else "against" if against else "dry",
        against=against,
        offline=offline,
        target=target,
        jwks=jwks,
        now=parse_time(at) if at else None,
        require_coverage=require_coverage,
    )
    paths = [str(path) for path in profile_paths(profiles, profile_opts)]
    raise typer.Exit(run_check_command(paths, options, json_out=json_out, junit=junit))


@friendly
def init(
    path: Annotated[str, typer.Argument(help="Where to write the profile.")] = "rrdev.toml",
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False,
    provider: Annotated[
        str | None,
        typer.Option(
            "--provider",
            help="Write a starter for auth0, okta, cognito, entra, google, keycloak or custom.",
        ),
    ] = None,
    issuer: Annotated[
        str | None, typer.Option("--issuer", metavar="URL", help="The issuer (tokens' iss).")
    ] = None,
    audience: Annotated[
        str | None, typer.Option("--audience", metavar="A", help="The API's audience.")
    ] = None,
    target: Annotated[
        str | None, typer.Option("--target", metavar="URL", help="The backend's base URL.")
    ] = None,
    discover: Annotated[
        bool,
        typer.Option(
            "--discover",
            help="Read --issuer's OIDC discovery document: check it, fill jwks_uri.",
        ),
    ] = False,
) -> None:
    """Write a commented starter profile (default ./rrdev.toml, found by every command).

    It has a target, a jwtVerify proxy credential, a default-deny proxy with a read rule,
    a permission gate and a write rule, and [[checks]] that pass with
    `rrdev check --offline`. --provider writes one shaped for that identity provider,
    filled with --issuer, --audience and --target; --discover reads the issuer's
    /.well-known/openid-configuration, checks it (exact issuer, https jwks_uri, RS256
    listed) and fills jwks_uri. Exit code 3 when the file exists (use --force), 4 when
    discovery fails.

    Example: rrdev init --provider okta --issuer https://YOUR_ORG.okta.com/oauth2/default --discover
    """
    target_path = Path(path)
    if target_path.exists() and not force:
        raise fail(f"{target_path} already exists", "pass --force to overwrite it", 3)
    from rrdev.cli.schema import pin_schema

    err = stderr_console()
    if provider is None and not (issuer or audience or target or discover):
        from importlib.resources import files

        text = files("rrdev").joinpath("data/starter.toml").read_text(encoding="utf-8")
    else:
        from rrdev.cli.starters import Starter, build_starter

        starter = Starter(provider or "custom", issuer, audience, target)
        text = build_starter(
            starter, str(target_path), discover, lambda line: err.print(line, markup=False)
        )
    text = pin_schema(text)
    try:
        target_path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise fail(f"cannot write {target_path}: {exc.strerror}", code=3) from None
    next_step = "fill in the TODOs" if provider is None else "replace the YOUR_... placeholders"
    err.print(
        f"wrote {target_path}: {next_step}, then `rrdev validate {target_path}`", markup=False
    )

"""The CLI is consistent (issue 14): -p/--profile on every command that reads a profile,
hints that name only options the command has, one --help style, no padding in piped
output, and the demo's profile reachable as ``-p demo``. Driven through CliRunner with
the real profiles and tokens minted by the local keyset."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path
from typing import Any

import pytest
import typer.main
from typer.testing import CliRunner

from rrdev.cli.app import app
from rrdev.cli.console import TrimmedLines
from rrdev.core.profile import packaged_demo_profile

ROOT = Path(__file__).resolve().parent.parent
AUTH0 = str(ROOT / "profiles" / "auth0.toml")

#: Every command that reads a profile, with the arguments that keep it from doing more
#: than loading one (a missing profile stops each before anything listens).
PROFILE_COMMANDS = [
    ["explain"],
    ["up"],
    ["tui"],
    ["validate"],
    ["check", "--offline"],
    ["token", "mint"],
    ["token", "fetch"],
    ["issuer", "serve"],
]
#: Those that also take profiles as positional arguments.
POSITIONAL = {"up", "tui", "validate", "check"}


@pytest.fixture
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("RRDEV_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("RRDEV_PROFILE", raising=False)
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.chdir(tmp_path)
    return CliRunner()


def run(runner: CliRunner, *args: str, stdin: str | None = None) -> Any:
    return runner.invoke(app, list(args), input=stdin)


def all_command_paths() -> list[list[str]]:
    """Every command and group of the CLI, as the words that reach it."""
    paths: list[list[str]] = [[]]

    def walk(command: Any, words: list[str]) -> None:
        for name, sub in getattr(command, "commands", {}).items():
            paths.append([*words, name])
            walk(sub, [*words, name])

    walk(typer.main.get_command(app), [])
    return paths


# ------------------------------------------------------------ -p / --profile


@pytest.mark.parametrize("option", ["-p", "--profile"])
@pytest.mark.parametrize("command", PROFILE_COMMANDS, ids=" ".join)
def test_every_profile_command_takes_the_profile_option(
    runner: CliRunner, command: list[str], option: str
) -> None:
    result = run(runner, *command, option, "missing.toml")
    assert "No such option" not in result.output
    assert result.exit_code == 3, result.output
    assert "missing.toml" in result.output and "not found" in result.output


@pytest.mark.parametrize("command", ["check", "validate"])
def test_check_and_validate_take_arguments_and_repeated_p(runner: CliRunner, command: str) -> None:
    extra = ["--offline"] if command == "check" else []
    result = run(runner, command, *extra, AUTH0, "-p", "demo", "--profile", AUTH0)
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert out.count("auth0.toml") >= 2 and "demo.toml" in out
    assert out.index("auth0.toml") < out.index("demo.toml")  # arguments first, then each -p


def test_check_with_p_runs_the_profile(runner: CliRunner) -> None:
    result = run(runner, "check", "-p", AUTH0, "--offline")
    assert result.exit_code == 0, result.output
    assert re.search(r"\d+ checks: \d+ passed, 0 failed", result.stdout)


def test_up_refuses_two_different_profiles(runner: CliRunner) -> None:
    result = run(runner, "up", "a.toml", "-p", "b.toml")
    assert result.exit_code == 2
    assert "two profiles given: a.toml and -p b.toml" in result.stderr


# ------------------------------------------------------------ the "no profile" hint


@pytest.mark.parametrize("command", PROFILE_COMMANDS[:-1], ids=" ".join)
def test_no_profile_hint_names_only_options_the_command_has(
    runner: CliRunner, command: list[str]
) -> None:
    if command[:2] == ["token", "mint"]:
        pytest.skip("token mint without a profile mints for the demo's issuer, by design")
    result = run(runner, *command)
    assert result.exit_code == 3, result.output
    hint = result.stderr.split("no profile given", 1)[1]  # `up` prints it as "(hint)"
    assert "-p/--profile PATH" in hint
    takes_arguments = command[0] in POSITIONAL
    assert ("as an argument" in hint) is takes_arguments
    assert "positional" not in hint
    help_text = run(runner, *command, "--help").stdout
    for option in re.findall(r"--[a-z-]+", hint):
        assert option in help_text, f"the hint names {option}, which {command} lacks"


# ------------------------------------------------------------ --help


@pytest.mark.parametrize("words", all_command_paths(), ids=lambda w: " ".join(w) or "rrdev")
def test_help_has_no_type_tags_and_one_argument_style(runner: CliRunner, words: list[str]) -> None:
    result = run(runner, *words, "--help")
    assert result.exit_code == 0, result.output
    text = result.stdout
    assert not re.search(r"<(bool|str|int|float|list\[[a-z]+\])>", text), text
    usage = next(line for line in text.splitlines() if "Usage:" in line)
    assert "[[" not in usage
    # Arguments are upper-case names: [PROFILE]..., [TOKEN], [PATH].
    arguments = re.findall(r"\[([^\]]+)\]", usage.split("[OPTIONS]", 1)[-1])
    assert all(name == name.upper() for name in arguments), usage


def test_help_shows_value_words_for_options_and_nothing_for_flags(runner: CliRunner) -> None:
    text = run(runner, "check", "--help").stdout
    assert re.search(r"--profile\s+-p\s+PROFILE\s", text)
    assert re.search(r"--jwks\s+FILE\|URL\s", text)
    assert re.search(r"--offline\s+The local keyset", text)


def test_shell_completion_still_completes_options(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("_RRDEV_COMPLETE", "complete_bash")
    monkeypatch.setenv("COMP_WORDS", "rrdev check --pro")
    monkeypatch.setenv("COMP_CWORD", "2")
    result = CliRunner().invoke(app, [], prog_name="rrdev")
    assert result.stdout.split() == ["--profile"]


# ------------------------------------------------------------ piped output


def test_piped_output_has_no_trailing_blanks(runner: CliRunner) -> None:
    token = run(runner, "token", "mint", "-p", AUTH0, "--scope", "read:products").stdout.strip()
    outputs = [
        run(runner, "check", "--offline", AUTH0).stdout,
        run(runner, "explain", token, "-p", AUTH0, "--offline").stdout,
        run(runner, "validate", AUTH0).stdout,
        run(runner, "token", "decode", token).stdout,
    ]
    for text in outputs:
        assert text.strip()
        padded = [line for line in text.splitlines() if line != line.rstrip()]
        assert not padded, padded[:3]


def test_trimmed_lines_keeps_blanks_inside_a_line_written_in_pieces() -> None:
    sink = io.StringIO()
    stream = TrimmedLines(sink)
    for piece in ("a   ", "  b", "    ", "\n", "c \x1b[0m  \x1b[1m", "\nd  "):
        stream.write(piece)
    assert sink.getvalue() == "a     b\nc\x1b[0m\x1b[1m\nd"
    assert stream.isatty() is False


# ------------------------------------------------------------ -p demo


def test_p_demo_explains_a_demo_token(runner: CliRunner) -> None:
    token = run(runner, "token", "mint", "-p", "demo", "--scope", "read:products").stdout.strip()
    result = run(
        runner, "explain", token, "-p", "demo", "--offline", "--path", "/api/v1/products", "--json"
    )
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert body["reason"] == "allowed"
    assert body["deciding_rule"] == "read-catalog"


@pytest.mark.parametrize("command", [["check", "--offline"], ["validate"]], ids=" ".join)
def test_p_demo_checks_and_validates(runner: CliRunner, command: list[str]) -> None:
    result = run(runner, *command, "-p", "demo")
    assert result.exit_code == 0, result.output
    assert str(packaged_demo_profile()) in result.stdout


def test_a_file_named_demo_wins_over_the_alias(runner: CliRunner, tmp_path: Path) -> None:
    (tmp_path / "demo").write_text("[target]\n", encoding="utf-8")
    result = run(runner, "validate", "-p", "demo")
    assert result.exit_code == 3
    assert "demo:" in result.stdout and "base_url" in result.stdout
    result = run(runner, "explain", "-p", "demo")
    assert result.exit_code == 3 and "base_url" in result.stderr


def test_demo_profile_prints_and_writes_the_packaged_profile(
    runner: CliRunner, tmp_path: Path
) -> None:
    packaged = packaged_demo_profile().read_text(encoding="utf-8")
    printed = run(runner, "demo", "profile")
    assert printed.exit_code == 0
    body = packaged.split("\n", 1)[1]  # all but the #:schema line, which is pinned
    assert printed.stdout.endswith(body)
    assert run(runner, "demo", "profile", "--out", "demo.toml").exit_code == 0
    assert (tmp_path / "demo.toml").read_text(encoding="utf-8") == printed.stdout
    again = run(runner, "demo", "profile", "--out", "demo.toml")
    assert again.exit_code == 3 and "--force" in again.stderr
    assert run(runner, "check", "--offline", "demo.toml").exit_code == 0


async def test_demo_banner_names_a_profile_a_user_can_pass(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rrdev.cli.demo import banner_text
    from rrdev.servers.demo import start_demo

    monkeypatch.setenv("RRDEV_HOME", str(tmp_path / "home"))
    handle = await start_demo(proxy_port=0, issuer_port=0, backend_port=0, graceful_timeout=1)
    try:
        text = banner_text(handle)
    finally:
        await handle.stop()
    assert "rrdev:data" not in text and "-p demo" in text and "rrdev demo profile" in text
    curls = [line for line in text.splitlines() if line.strip().startswith("curl ")]
    assert len(curls) == 5
    readme = " ".join((ROOT / "README.md").read_text(encoding="utf-8").split())
    assert "The banner prints five curl commands" in readme

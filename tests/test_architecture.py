"""The architecture STYLE.md promises: layers as folders, one direction, lazy front ends.

Two kinds of check. A static one reads every module's source (lazy imports inside
functions included) and refuses an import that points up the stack: ``core`` ->
``clients`` -> ``servers`` -> ``checks`` -> ``cli``/``tui``. A dynamic one imports each
engine module in a fresh interpreter and looks at ``sys.modules``: what a layer may not
import must not arrive indirectly either.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# Lower number = lower layer. A module may import its own layer and those below it.
LAYERS = {"core": 0, "clients": 1, "servers": 2, "checks": 3, "cli": 4, "tui": 4}
# Front ends share a rank; only the CLI may start the TUI (`rrdev tui`, `up --tui`).
SIDEWAYS = {("cli", "tui")}
# Rich renderings of an explanation, shared by both front ends (no Typer in it).
SHARED_RENDERING = "rrdev.cli.render"
# `rrdev/__init__.py` holds only the version; `__main__` is `python -m rrdev`.
TOP_LEVEL = {"rrdev": "core", "rrdev.__main__": "cli"}

ENGINE_LAYERS = ("core", "clients", "servers", "checks")
FRONT_END_LIBS = ("textual", "typer", "rich")
# Third-party packages each layer must not load, even indirectly, at import time.
FORBIDDEN_LIBS = {
    "core": (*FRONT_END_LIBS, "httpx", "aiohttp", "uvicorn"),
    "clients": (*FRONT_END_LIBS, "aiohttp", "uvicorn"),
    "servers": FRONT_END_LIBS,
    "checks": FRONT_END_LIBS,
}
# Third-party packages whose names may never appear in a layer's source.
FORBIDDEN_SOURCE_LIBS = {
    "core": (*FRONT_END_LIBS, "httpx", "aiohttp", "uvicorn"),
    "clients": FRONT_END_LIBS,
    "servers": FRONT_END_LIBS,
    "checks": FRONT_END_LIBS,
    "tui": ("typer",),
}


@dataclass(frozen=True)
class Violation:
    path: str
    line: int
    imported: str
    why: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: imports {self.imported} ({self.why})"


def module_name(package_root: Path, path: Path) -> str:
    parts = list(path.relative_to(package_root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def layer_of(module: str) -> str | None:
    if module in TOP_LEVEL:
        return TOP_LEVEL[module]
    parts = module.split(".")
    if parts[0] != "rrdev" or len(parts) < 2:
        return None
    return parts[1] if parts[1] in LAYERS else None


def imported_names(tree: ast.AST, module: str) -> list[tuple[int, str]]:
    """Every module named by an import anywhere in the file, relative ones resolved."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = module.split(".")[: -node.level]
                base = ".".join([*anchor, base] if base else anchor)
            # `from rrdev.servers import proxy` names the module `rrdev.servers.proxy`.
            names = [f"{base}.{alias.name}" for alias in node.names]
            found.extend((node.lineno, name) for name in names if _is_module(name))
            found.append((node.lineno, base))
    return found


def _is_module(name: str) -> bool:
    path = ROOT.joinpath(*name.split("."))
    return path.with_suffix(".py").exists() or (path / "__init__.py").exists()


def layer_violations(package_root: Path) -> list[Violation]:
    """Imports in ``package_root`` (an ``rrdev/`` folder) that break the layering."""
    violations: list[Violation] = []
    for path in sorted(package_root.rglob("*.py")):
        module = module_name(package_root, path)
        where = str(path.relative_to(package_root.parent))
        layer = layer_of(module)
        if layer is None:
            violations.append(Violation(where, 1, module, "module outside every layer"))
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=where)
        for line, name in imported_names(tree, module):
            problem = _problem(layer, name)
            if problem and not any(v.path == where and v.line == line for v in violations):
                violations.append(Violation(where, line, name, problem))
    return violations


def _problem(layer: str, imported: str) -> str | None:
    top = imported.split(".")[0]
    if top in FORBIDDEN_SOURCE_LIBS.get(layer, ()):
        return f"{layer}/ may not use {top}"
    if top != "rrdev":
        return None
    target = layer_of(imported)
    if target is None or target == layer:
        return None
    if layer == "tui" and imported.startswith(SHARED_RENDERING):
        return None
    if LAYERS[target] < LAYERS[layer] or (layer, target) in SIDEWAYS:
        return None
    return f"{layer}/ may not import {target}/"


def test_every_import_points_down_the_stack() -> None:
    violations = layer_violations(ROOT / "rrdev")
    assert violations == [], "\n".join(map(str, violations))


def test_shared_rendering_stays_free_of_typer() -> None:
    tree = ast.parse((ROOT / "rrdev" / "cli" / "render.py").read_text(encoding="utf-8"))
    names = {name.split(".")[0] for _, name in imported_names(tree, SHARED_RENDERING)}
    assert "typer" not in names
    assert not [n for _, n in imported_names(tree, SHARED_RENDERING) if n.startswith("rrdev.cli.")]


def test_the_layers_are_the_folders() -> None:
    folders = {p.name for p in (ROOT / "rrdev").iterdir() if (p / "__init__.py").exists()}
    assert folders == set(LAYERS)
    loose = sorted(p.name for p in (ROOT / "rrdev").glob("*.py"))
    assert loose == ["__init__.py", "__main__.py"]


@pytest.fixture
def planted(tmp_path: Path):
    """Plant a forbidden import in a copy of one real module and check that copy."""
    copy = tmp_path / "rrdev"

    def plant(relative: str, code: str) -> list[str]:
        target = copy / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        original = (ROOT / "rrdev" / relative).read_text(encoding="utf-8")
        target.write_text(original + code, encoding="utf-8")
        return [str(v) for v in layer_violations(copy)]

    return plant


@pytest.mark.parametrize(
    ("relative", "code", "expected"),
    [
        # A lazy import inside a function counts as much as one at the top.
        (
            "core/rules.py",
            "\n\ndef _planted():\n    from rrdev.servers.proxy import ProxyApp\n",
            "core/ may not import servers/",
        ),
        ("core/explain.py", "\nimport rrdev.cli.render\n", "core/ may not import cli/"),
        ("core/verify.py", "\nfrom rrdev.tui import app\n", "core/ may not import tui/"),
        ("core/records.py", "\nfrom rrdev.clients import jwks\n", "core/ may not import clients/"),
        ("core/paths.py", "\nimport httpx\n", "core/ may not use httpx"),
        (
            "clients/jwks.py",
            "\nfrom rrdev.servers import demo\n",
            "clients/ may not import servers/",
        ),
        (
            "servers/echo.py",
            "\nfrom rrdev.checks import engine\n",
            "servers/ may not import checks/",
        ),
        ("servers/echo.py", "\nfrom rich.text import Text\n", "servers/ may not use rich"),
        ("checks/__init__.py", "\nimport rrdev.cli.app\n", "checks/ may not import cli/"),
        ("tui/store.py", "\nfrom rrdev.cli import console\n", "tui/ may not import cli/"),
        ("tui/store.py", "\nimport typer\n", "tui/ may not use typer"),
    ],
)
def test_a_planted_upward_import_is_caught(planted, relative, code, expected) -> None:
    found = planted(relative, code)
    assert any(relative in v and expected in v for v in found), found


def test_a_module_outside_the_layers_is_caught(planted, tmp_path: Path) -> None:
    assert planted("core/paths.py", "") == []  # the module as it is passes
    (tmp_path / "rrdev" / "helpers.py").write_text("X = 1\n", encoding="utf-8")
    found = planted("core/paths.py", "")
    assert any("helpers.py" in v and "outside every layer" in v for v in found), found


def _layer_modules(layer: str) -> list[str]:
    return [module_name(ROOT / "rrdev", p) for p in sorted((ROOT / "rrdev" / layer).rglob("*.py"))]


def _engine_modules() -> list[str]:
    return [m for layer in ENGINE_LAYERS for m in _layer_modules(layer)]


# Libraries each layer may load, imported once before the children fork (so that
# each child pays only for its own module): they can hide nothing the test looks for.
PRELOAD = {
    "core": ["asyncio", "jwt", "cryptography.hazmat.primitives.asymmetric.rsa", "tomlkit"],
    "clients": [],  # not httpx: importing it loads rich, so clients import it lazily
    "servers": ["aiohttp", "uvicorn"],
    "checks": [],
}

# One interpreter per layer forks a child per module, so each import starts from the
# same clean `sys.modules` without paying interpreter start-up seventy times over.
_PROBE = """
import json, os, sys
modules, preload = json.loads(sys.argv[1]), json.loads(sys.argv[2])
for name in preload:
    __import__(name)
report = {}
for module in modules:
    read, write = os.pipe()
    if os.fork() == 0:
        os.close(read)
        __import__(module)
        os.write(write, json.dumps(sorted(sys.modules)).encode())
        os._exit(0)
    os.close(write)
    chunks = []
    while chunk := os.read(read, 1 << 16):
        chunks.append(chunk)
    os.close(read)
    os.wait()
    report[module] = json.loads(b"".join(chunks) or b"null")
print(json.dumps(report))
"""


@pytest.fixture(scope="module")
def loaded_by_module() -> dict[str, list[str] | None]:
    report: dict[str, list[str] | None] = {}
    preload: list[str] = []
    for layer in ENGINE_LAYERS:
        preload += PRELOAD[layer]
        out = subprocess.run(
            [sys.executable, "-c", _PROBE, json.dumps(_layer_modules(layer)), json.dumps(preload)],
            capture_output=True,
            text=True,
            check=True,
            cwd=ROOT,
        )
        report.update(json.loads(out.stdout))
    return report


@pytest.mark.parametrize("module", _engine_modules())
def test_engine_module_loads_nothing_above_it(module: str, loaded_by_module) -> None:
    loaded = loaded_by_module[module]
    assert loaded is not None, f"importing {module} failed"
    layer = layer_of(module)
    assert layer is not None
    leaked_libs = sorted(m for m in loaded if m.split(".")[0] in FORBIDDEN_LIBS[layer])
    assert leaked_libs == [], f"{module} pulls in {leaked_libs[:5]}"
    above = sorted(
        m for m in loaded if (target := layer_of(m)) is not None and LAYERS[target] > LAYERS[layer]
    )
    assert above == [], f"{module} pulls in {above[:5]}"


def imported_after(code: str) -> set[str]:
    probe = f"import sys, json\n{code}\nprint(json.dumps(sorted(sys.modules)))"
    env = {**os.environ, "NO_COLOR": "1"}
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, env=env
    )
    return set(json.loads(out.stdout))


@pytest.mark.parametrize(
    "args",
    [
        ["explain", "--help"],
        ["explain", "-p", str(ROOT / "profiles" / "auth0.toml"), "--path", "/api/v1/products"],
    ],
    ids=["help", "dry-run"],
)
def test_cli_explain_does_not_import_textual_uvicorn_or_aiohttp(args: list[str]) -> None:
    code = (
        "from typer.testing import CliRunner\n"
        "from rrdev.cli.app import app\n"
        f"result = CliRunner().invoke(app, {args!r})\n"
        "assert result.exit_code in (0, 1), (result.exit_code, result.output)\n"
    )
    loaded = imported_after(code)
    assert "rrdev.cli.app" in loaded
    heavy = sorted(m for m in loaded if m.split(".")[0] in ("textual", "uvicorn", "aiohttp"))
    assert heavy == []


HEAVY_FOR_THE_CLI = ("pydantic", "pydantic_core", "textual", "uvicorn", "aiohttp")


def cli_imports(args: list[str], tmp_path: Path, stdin: str = "") -> tuple[int, set[str]]:
    """Run the real entry point (``rrdev.cli.app:main``, as the console script does) in a
    fresh process; return its exit code and every module it imported."""
    seen = tmp_path / "modules.json"
    probe = (
        "import sys, json\n"
        f"sys.argv = ['rrdev', *{args!r}]\n"
        "from rrdev.cli.app import main\n"
        "try:\n    main()\n    code = 0\n"
        "except SystemExit as stop:\n    code = stop.code or 0\n"
        f"open({str(seen)!r}, 'w').write(json.dumps([code, sorted(sys.modules)]))\n"
    )
    env = {**os.environ, "NO_COLOR": "1", "RRDEV_HOME": str(tmp_path / "home")}
    subprocess.run(
        [sys.executable, "-c", probe],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        check=True,
        cwd=ROOT,
    )
    code, modules = json.loads(seen.read_text())
    return code, set(modules)


def minted_token(tmp_path: Path) -> str:
    from rrdev.core.keyset import Keyset, mint_token
    from rrdev.core.profile import load_profile

    keyset = Keyset.load_or_create(tmp_path / "home")
    cred = load_profile(ROOT / "profiles" / "auth0.toml").proxy_credential
    return mint_token(keyset, issuer=cred.issuer, audience=cred.audience[0], scope="read:products")


@pytest.mark.parametrize(
    "args",
    [
        ["--help"],
        ["explain", "--help"],
        ["explain", "-", "--offline", "-p", "profiles/auth0.toml", "--path", "/api/v1/products"],
    ],
    ids=["rrdev-help", "explain-help", "explain-offline-dry-run"],
)
def test_cold_start_of_help_and_explain_skips_pydantic_and_servers(
    args: list[str], tmp_path: Path
) -> None:
    """Typer parses text options through pydantic unless ``cli/lean_params.py`` steps in
    (~100 ms), and explain needs neither the TUI nor the servers: the cold start stays
    lean (bench/bench_cold_start.py measures it)."""
    token = minted_token(tmp_path) if "-" in args else ""
    code, loaded = cli_imports(args, tmp_path, stdin=token)
    assert code == 0, "explain allows the minted token (exit 0): a real, verified dry run"
    assert "rrdev.cli.app" in loaded
    heavy = sorted(m for m in loaded if m.split(".")[0] in HEAVY_FOR_THE_CLI)
    assert heavy == []


def test_explain_of_a_good_profile_does_not_import_tomlkit(tmp_path: Path) -> None:
    """A profile that parses is read with the standard library's ``tomllib``; tomlkit
    (its errors carry line and column) is imported only for a file tomllib refuses."""
    args = ["explain", "-", "--offline", "-p", "profiles/auth0.toml", "--path", "/api/v1/products"]
    code, loaded = cli_imports(args, tmp_path, stdin=minted_token(tmp_path))
    assert code == 0
    assert "tomllib" in loaded
    assert sorted(m for m in loaded if m.split(".")[0] == "tomlkit") == []

"""`python -m bench [all|load|micro|setup] [--peers] [--quick] [--json FILE] ...`

One command for issue 12's measurements: it installs what it needs (wrk, nginx, and with
--peers node's packages and mitmproxy's venv), runs the throughput scenarios in
interleaved rounds after a sanity check and a warm-up, runs the micro-benchmarks, and
prints one table with the machine it ran on. See bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `python bench` or a run from elsewhere: rrdev from here
    sys.path.insert(0, str(ROOT))

from bench import prepare  # noqa: E402
from bench.load import LoadSettings, help_latency_note, run_load  # noqa: E402
from bench.procs import machine  # noqa: E402
from bench.report import as_json, format_machine, format_table, format_targets  # noqa: E402
from bench.scenarios import SCENARIOS  # noqa: E402
from bench.world import make_world  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description=__doc__.split("\n", 2)[2],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("what", nargs="?", default="all", choices=("all", "load", "micro", "setup"))
    parser.add_argument("--peers", action="store_true", help="add the Node peer and mitmproxy")
    parser.add_argument("--seconds", type=float, default=10, help="per wrk run (default 10)")
    parser.add_argument("--rounds", type=int, default=2, help="interleaved rounds (default 2)")
    parser.add_argument("--warmup", type=float, default=3, help="seconds per scenario (3)")
    parser.add_argument("--connections", type=int, default=32, help="wrk -c (default 32)")
    parser.add_argument("--quick", action="store_true", help="2 s runs, 1 round, short micro")
    names = ", ".join(s.name for s in SCENARIOS)
    parser.add_argument("--only", default="", help=f"comma-separated scenarios of: {names}")
    parser.add_argument("--json", type=Path, default=None, help="also save the results here")
    args = parser.parse_args(argv)
    if args.quick:
        args.seconds, args.rounds, args.warmup = 2, 1, 1
    return args


def load_settings(args: argparse.Namespace) -> LoadSettings:
    only = tuple(name.strip() for name in args.only.split(",") if name.strip())
    unknown = set(only) - {s.name for s in SCENARIOS}
    if unknown:
        sys.exit(f"unknown scenario(s): {', '.join(sorted(unknown))}")
    settings = LoadSettings(args.seconds, args.rounds, args.warmup, args.connections, args.peers)
    return replace(settings, only=only)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    prepare.ensure_base()
    if args.peers:
        prepare.ensure_peers()
    if args.what == "setup":
        return
    before = machine()
    settings = load_settings(args)
    results, micro = [], {}
    if args.what in ("all", "load"):
        world = make_world()
        try:
            results = run_load(world, settings)
        finally:
            shutil.rmtree(world.work, ignore_errors=True)
        for result in results:
            if note := help_latency_note(result):
                result.notes.append(note)
    if args.what in ("all", "micro"):
        from bench.micro import run_micro

        micro = run_micro(quick=args.quick)
    done = replace(before, load_after=os.getloadavg())
    print()
    print(format_machine(done))
    if results:
        print(
            f"wrk -t1 -c{settings.connections} -d{settings.seconds:g}s, "
            f"{settings.rounds} interleaved rounds after a {settings.warmup:g} s warm-up, "
            "medians; CPU % of the server's processes (100 = one core)\n"
        )
        print(format_table(results, peer="node peer" if args.peers else None))
        print(format_targets(results))
    if micro:
        from bench.micro import format_micro

        print(format_micro(micro))
    if args.json:
        settings_dict = vars(settings) | {"what": args.what}
        args.json.write_text(json.dumps(as_json(done, settings_dict, results, micro), indent=2))
        print(f"saved {args.json}")


if __name__ == "__main__":
    main()

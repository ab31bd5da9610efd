"""``ferry sim``: one deterministic simulated run, or a sweep of seeds, judged by the checker.

Exit status 0 when every run kept guarantees 1-6, 1 on any violation, 2 on a
usage error. A violation prints the seed, the virtual time, the last events of
the trace and the command that replays it.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import argparse

    from actors.planted import Bug
    from sim.world import SimReport

EXIT_VIOLATION = 1
EXIT_USAGE = 2


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Adds ``ferry sim``."""
    from actors.planted import Bug  # small: no simulator import for ``ferry --help``

    parser = subparsers.add_parser(
        "sim",
        help="run the deterministic simulator (faults, invariants)",
        description="Run the real agent and cloud logic under simulated time, network, disk "
        "and crashes, and check the sync guarantees. The same seed gives the same trace hash.",
    )
    seeds = parser.add_mutually_exclusive_group()
    seeds.add_argument("--seed", type=int, default=0, help="one run with this seed (default 0)")
    seeds.add_argument("--seeds", metavar="A:B", help="sweep seeds A..B-1, one process per run")
    parser.add_argument("--hours", type=float, default=1.0, help="fault phase length (default 1)")
    parser.add_argument(
        "--collectors", type=int, default=10, help="capture methods on the robot (default 10)"
    )
    parser.add_argument(
        "--faults",
        default="all",
        help="all, none, or a comma-separated list (partition, flapping, latency, drop, "
        "lost-ack, duplicate, cloud-crash, robot-crash, disk-fill, slow-disk, clock-jump, "
        "component-error, component-hang)",
    )
    parser.add_argument(
        "--plant",
        action="append",
        default=[],
        metavar="BUG",
        help="switch on a planted bug (repeatable), to see the checker catch it: "
        + ", ".join(bug.value for bug in Bug),
    )
    parser.add_argument(
        "--heal-hours", type=float, default=2.0, help="longest heal phase (default 2)"
    )
    parser.add_argument(
        "--jobs", type=int, default=os.cpu_count() or 1, help="parallel runs in a sweep"
    )
    parser.add_argument("--log", action="store_true", help="show the agent's log lines")
    parser.set_defaults(handler=_handle)


def _handle(args: argparse.Namespace) -> int:
    from sim.faults import parse_kinds
    from sim.sweep import parse_seeds, sweep
    from sim.world import SimConfig, run

    try:
        faults = parse_kinds(args.faults)
        planted = _parse_bugs(args.plant)
        seeds = parse_seeds(args.seeds) if args.seeds else None
    except ValueError as exc:
        print(f"ferry sim: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if args.hours <= 0 or args.collectors < 1 or args.heal_hours <= 0:
        print("ferry sim: --hours and --heal-hours must be > 0, --collectors >= 1", file=sys.stderr)
        return EXIT_USAGE
    base = SimConfig(
        seed=args.seed,
        hours=args.hours,
        collectors=args.collectors,
        faults=faults,
        planted=planted,
        heal_hours=args.heal_hours,
    )
    if seeds is None:
        report = run(base, log=args.log)
        print(render(report))
        return 0 if report.ok else EXIT_VIOLATION
    failed: list[SimReport] = []

    def progress(report: SimReport) -> None:
        mark = "ok " if report.ok else "FAIL"
        print(
            f"{mark} seed {report.config.seed:>6}  hash {report.trace_hash}  "
            f"{report.tally.captured:>8} captured  {report.speedup:>6.0f}x",
            flush=True,
        )
        if not report.ok:
            failed.append(report)

    reports = sweep(base, seeds, jobs=args.jobs, on_report=progress)
    for report in sorted(failed, key=lambda r: r.config.seed):
        print()
        print(render(report))
    print(
        f"\n{len(reports)} runs, {len(failed)} with violations"
        + (f": seeds {', '.join(str(r.config.seed) for r in failed)}" if failed else "")
    )
    return EXIT_VIOLATION if failed else 0


def _parse_bugs(names: list[str]) -> frozenset[Bug]:
    """The ``--plant`` names as bugs; an unknown one raises ``ValueError`` naming the known."""
    from actors.planted import Bug

    known = {bug.value: bug for bug in Bug}
    unknown = [name for name in names if name not in known]
    if unknown:
        raise ValueError(f"--plant: unknown bug {unknown[0]!r}; known: {', '.join(known)}")
    return frozenset(known[name] for name in names)


def render(report: SimReport) -> str:
    """The summary of one run (and its violations, with the replay command)."""
    c, t = report.config, report.tally
    faults = ", ".join(f"{k} {v}" for k, v in sorted(report.faults.items())) or "none"
    planted = ", ".join(sorted(b.value for b in c.planted))
    lines = [
        f"ferry sim: seed {c.seed}, {c.hours:g} h, {c.collectors} collectors"
        + (f", PLANTED: {planted}" if planted else ""),
        f"  faults injected      {sum(report.faults.values())} ({faults})",
        f"  robot crashes        {report.robot_crashes} ({report.torn_bytes} torn bytes,"
        f" unsynced directory changes undone: {report.extra.get('lost_dir_entries', 0)})",
        f"  fsync errors         {report.extra.get('fsync_errors', 0)}"
        f" ({report.extra.get('fsync_lost_bytes', 0)} unsynced bytes lost, to be written again)",
        f"  cloud crashes        {report.cloud_crashes}",
        f"  readings produced    {report.produced}",
        f"  files dropped        {report.extra.get('files_dropped', 0)} (arbitrary files)",
        f"  captured             {t.captured} (readings and files)",
        f"  delivered to cloud   {t.delivered}",
        f"  deleted by policy    {t.deleted_by_policy}",
        f"  duplicated           {t.duplicated}",
        f"  lost                 {t.lost}",
        f"  interruptions        {t.interruptions}",
        f"  bytes re-sent        {t.resent_bytes}",
        f"  max backoff          {t.max_backoff_s:.1f} s",
        f"  simulated            {report.simulated_s / 3600:.2f} h in {report.wall_s:.1f} s"
        f" ({report.speedup:.0f}x real time)",
        f"  trace hash           {report.trace_hash} ({report.events} events)",
    ]
    if report.ok:
        lines.append("  OK: guarantees 1-6 held")
        return "\n".join(lines)
    lines.append(f"  VIOLATIONS: {len(report.violations)}")
    for v in report.violations[:3]:
        lines.append(f"  - guarantee {v.guarantee} at virtual time {v.time:.3f} s: {v.message}")
        lines.append("    last events:")
        lines.extend(f"      {event}" for event in v.recent[-15:])
    lines.append(f"  replay: {c.replay_command()}")
    return "\n".join(lines)

"""The simulator as a product: reproducible runs, a passing sweep, and a checker that can fail.

Guarantees checked: the same seed gives the same trace hash (in one process and
across processes with different string hashing); a sweep of seeds over the
correct code finds no violation of guarantees 1-5 (seeds rotate daily, printed);
every planted bug is caught by the canonical hunt within a few seeds (the full
1,000-seed bound is ``make soak``); a Hypothesis-drawn fault schedule leaves the
guarantees intact at quiescence.
"""

from __future__ import annotations

import dataclasses
import os
import re
import subprocess
import sys
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from actors.planted import Bug
from sim.faults import Fault, FaultKind, parse_kinds
from sim.hunts import hunt
from sim.sweep import parse_seeds, sweep
from sim.world import SimConfig, run

SHORT = SimConfig(seed=0, hours=0.5, collectors=4)


def _ferry_sim(*args: str, hashseed: str = "0") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONHASHSEED": hashseed}
    return subprocess.run(
        [sys.executable, "-m", "actors.cli", "sim", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=False,
    )


def _hash(output: str) -> str:
    found = re.search(r"trace hash\s+([0-9a-f]{16})", output)
    assert found, output
    return found.group(1)


def test_same_seed_same_trace_and_figures():
    """Reproducibility: two runs of one seed make the same decisions; another seed does not."""
    first = run(dataclasses.replace(SHORT, seed=11))
    again = run(dataclasses.replace(SHORT, seed=11))
    other = run(dataclasses.replace(SHORT, seed=12))
    assert first.ok, first.violations
    assert first.trace_hash == again.trace_hash
    assert first.tally == again.tally
    assert first.events == again.events
    assert first.trace_hash != other.trace_hash


def test_files_still_on_the_robot_when_the_heal_ends_are_a_liveness_violation():
    """Guarantee 5: a heal too short for one sync pass (5 min) leaves files, and they are named."""
    report = run(SimConfig(seed=3, hours=0.2, collectors=3, faults=frozenset(), heal_hours=0.02))
    liveness = [v.message for v in report.violations if v.guarantee == "5 liveness"]
    assert liveness, report.violations
    assert "files not synced after the network healed" in liveness[0]
    assert ".capture" in liveness[0] or ".prog" in liveness[0]


def test_a_drained_robot_ends_the_heal_early_without_a_liveness_violation():
    """Guarantee 5, the other way: once every file is synced the run stops and nothing is left."""
    report = run(SimConfig(seed=3, hours=0.25, collectors=3, faults=frozenset(), heal_hours=2.0))
    assert report.ok, report.violations
    assert report.simulated_s < (0.25 + 0.5) * 3600.0


@pytest.mark.slow
def test_trace_hash_is_the_same_in_another_process_with_other_string_hashing():
    """Reproducibility does not hang on PYTHONHASHSEED (set iteration order) or the process."""
    args = ("--seed", "5", "--hours", "0.5", "--collectors", "3")
    a = _ferry_sim(*args, hashseed="1")
    b = _ferry_sim(*args, hashseed="2")
    assert a.returncode == 0, a.stdout + a.stderr
    assert _hash(a.stdout) == _hash(b.stdout)


@pytest.mark.slow
def test_a_sweep_of_the_correct_code_keeps_guarantees_1_to_5(request: pytest.FixtureRequest):
    """No violation over a sweep with every fault; the seed window rotates daily and is printed."""
    base_seed = int(request.config.getoption("hypothesis_seed") or time.strftime("%Y%m%d"))
    seeds = range(base_seed % 100_000 * 10, base_seed % 100_000 * 10 + 4)
    print(f"sim sweep seeds {seeds.start}:{seeds.stop}")
    base = SimConfig(seed=0, hours=2.0, collectors=5)
    reports = sweep(base, seeds, jobs=2)
    failed = [r for r in reports if not r.ok]
    assert not failed, "\n".join(
        f"seed {r.config.seed}: {r.violations[0].message}\n  replay: {r.config.replay_command()}"
        for r in failed
    )
    assert all(r.tally.captured > 0 and r.tally.lost == 0 for r in reports)


# The canonical hunts (sim/hunts.py) from seed 0: deterministic, so never flaky.
HUNT_BOUND = 20


@pytest.mark.slow
@pytest.mark.parametrize("bug", list(Bug), ids=lambda b: b.value)
def test_every_planted_bug_is_caught_by_a_short_sweep(bug: Bug):
    """The checker can fail: each planted bug breaks a guarantee within a few seeds."""
    result = hunt(bug, range(HUNT_BOUND))
    assert result.caught_by is not None, f"{bug.value}: not caught by seeds 0..{HUNT_BOUND - 1}"
    assert result.caught_by.violations


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--faults", "rain"], "unknown fault 'rain'"),
        (["--plant", "typo"], "--plant"),
        (["--seeds", "5:2"], "B must be greater than A"),
        (["--hours", "0"], "--hours"),
    ],
)
def test_bad_arguments_are_named(args: list[str], message: str, capsys: pytest.CaptureFixture[str]):
    """A usage error exits 2 and names the argument that is wrong."""
    from actors.cli import main

    assert main(["sim", *args]) == 2
    assert message in capsys.readouterr().err


def test_a_violation_exits_1_with_the_seed_time_events_and_replay(
    capsys: pytest.CaptureFixture[str],
):
    """A violation prints what the issue asks: seed, virtual time, last events, replay command."""
    from actors.cli import main

    args = ["sim", "--seed", "3", "--hours", "0.25", "--collectors", "2", "--faults", "none"]
    assert main([*args, "--plant", "delete-before-confirm"]) == 1
    out = capsys.readouterr().out
    assert "seed 3" in out
    assert "guarantee 3 delete after confirm at virtual time" in out
    assert "last events:" in out
    assert "replay: ferry sim --seed 3 --hours 0.25 --collectors 2 --faults none" in out
    assert "--plant delete-before-confirm" in out


def test_parsers():
    """--faults and --seeds accept what the help says."""
    assert parse_kinds("all") == frozenset(FaultKind)
    assert parse_kinds("none") == frozenset()
    assert parse_kinds("partition, robot-crash") == {FaultKind.PARTITION, FaultKind.ROBOT_CRASH}
    assert parse_seeds("3:7") == range(3, 7)
    assert parse_seeds("9") == range(9, 10)


_KINDS = sorted(FaultKind, key=lambda k: k.value)


@st.composite
def fault_schedules(draw: st.DrawFn, seconds: float = 1800.0) -> tuple[Fault, ...]:
    """Any schedule of any faults over a half-hour fault phase."""
    faults = []
    for _ in range(draw(st.integers(0, 8))):
        kind = draw(st.sampled_from(_KINDS))
        at = draw(st.floats(0.0, seconds, allow_nan=False))
        duration = draw(st.floats(1.0, 3600.0, allow_nan=False))
        if kind is FaultKind.CLOCK_JUMP:
            magnitude = draw(st.floats(-86400.0, 86400.0, allow_nan=False))
        elif kind in (FaultKind.LATENCY, FaultKind.SLOW_DISK):
            magnitude = draw(st.floats(0.001, 3.0))
        elif kind is FaultKind.FLAPPING:
            magnitude = draw(st.floats(1.0, 30.0))
        else:
            magnitude = draw(st.floats(0.0, 1.0))
        faults.append(Fault(at, kind, duration, magnitude))
    return tuple(sorted(faults, key=lambda f: (f.at, f.kind.value)))


@pytest.mark.slow
@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(schedule=fault_schedules(), rng=st.randoms(use_true_random=False))
def test_any_fault_schedule_keeps_the_guarantees_at_quiescence(schedule, rng):
    """End to end: the whole supervised tree under a drawn schedule keeps guarantees 1-5."""
    config = SimConfig(seed=rng.getrandbits(32), hours=0.5, collectors=3, schedule=schedule)
    report = run(config)
    assert report.ok, [v.message for v in report.violations] + [config.replay_command()]

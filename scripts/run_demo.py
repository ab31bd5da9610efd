"""``make run``: the demo robot capturing, and syncing to a local ``ferry cloud``.

Starts ``ferry cloud serve`` on a free loopback port with its embedded store in
``~/.ferry/cloud`` (or ``$FERRY_HOME/cloud``), creates a demo API key on first
use (kept in ``~/.ferry/demo/key.json``, mode 0600), writes the cloud section to
``~/.ferry/demo/cloud.json`` and runs ``ferry run --config config/demo.json
--cloud ~/.ferry/demo/cloud.json`` in the foreground. Ctrl-C stops the agent
(its open files are finished first), then the cloud.

    python scripts/run_demo.py [--config FILE] [extra `ferry run` arguments…]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FERRY = [sys.executable, "-m", "actors.cli"]
ORG, LOCATION, PART = "demo-org", "demo-location", "demo-robot-main"


def _home() -> Path:
    env = os.environ.get("FERRY_HOME")
    return Path(env).expanduser() if env else Path.home() / ".ferry"


def _demo_key(data_dir: Path, demo_dir: Path) -> dict[str, str]:
    """The demo's API key: created once, then reused (only its hash is in the store)."""
    path = demo_dir / "key.json"
    if path.exists():
        return json.loads(path.read_text())
    result = subprocess.run(
        [*FERRY, "cloud", "keys", "create", "--data-dir", str(data_dir), "--org", ORG,
         "--location", LOCATION, "--json"],
        capture_output=True, text=True, check=True, cwd=ROOT,
    )  # fmt: skip
    key = json.loads(result.stdout)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(key, f)
    return key


def _start_cloud(data_dir: Path) -> tuple[subprocess.Popen[str], str]:
    cloud = subprocess.Popen(
        [*FERRY, "cloud", "serve", "--host", "127.0.0.1", "--port", "0", "--data-dir",
         str(data_dir)],
        stdout=subprocess.PIPE, text=True, cwd=ROOT,
    )  # fmt: skip
    assert cloud.stdout is not None
    line = cloud.stdout.readline()
    if "listening on" not in line:
        cloud.wait()
        sys.exit(f"run_demo: ferry cloud serve did not start: {line.strip()}")
    return cloud, line.split()[4]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=str(ROOT / "config" / "demo.json"))
    args, extra = parser.parse_known_args()
    home = _home()
    data_dir, demo_dir = home / "cloud", home / "demo"
    for d in (data_dir, demo_dir):
        d.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = _demo_key(data_dir, demo_dir)
    cloud, address = _start_cloud(data_dir)
    cloud_file = demo_dir / "cloud.json"
    section = {
        "address": address,
        "part_id": PART,
        "api_key_id": key["key_id"],
        "api_key": key["key"],
        "insecure": True,
    }
    fd = os.open(cloud_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(section, f)
    print(
        f"run_demo: ferry cloud on {address} (store {data_dir}); the agent syncs to it.\n"
        f"run_demo: export what it holds (key in {demo_dir / 'key.json'}):\n"
        f"  FERRY_API_KEY_ID=<key_id> FERRY_API_KEY=<key> "
        f".venv/bin/ferry export --address {address} --out /tmp/ferry-export",
        flush=True,
    )
    agent = subprocess.Popen(
        [*FERRY, "run", "--config", args.config, "--cloud", str(cloud_file), *extra], cwd=ROOT
    )
    try:
        while agent.poll() is None:
            try:
                agent.wait()
            except KeyboardInterrupt:
                agent.send_signal(signal.SIGINT)  # finish open files, then stop
    finally:
        if cloud.poll() is None:
            cloud.send_signal(signal.SIGTERM)
            try:
                cloud.wait(timeout=15)
            except subprocess.TimeoutExpired:
                cloud.kill()
    return agent.returncode if agent.returncode is not None else 1


if __name__ == "__main__":
    sys.exit(main())

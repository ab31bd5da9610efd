"""Builds, once, the isolated venv that holds the official Viam Python SDK.

Why a venv of its own: ``viam-sdk`` pins ``protobuf==6.x`` while the project's test
dependencies need ``protobuf>=7``, so the SDK cannot share ``.venv``. The venv is made
with ``python -m venv`` and ``pip install`` at ``<repo>/.cache/viam-sdk-venv`` (nothing is
added to the project's dependencies) and reused while its marker file matches the
requested packages. An exclusive ``flock`` on a sibling lock file serialises builders,
so concurrent pytest workers never race: the first builds, the others wait and reuse.

If PyPI cannot be reached the build raises :class:`SdkEnvUnavailable`, which the tests
turn into a skip carrying pip's reason; any other build failure is a plain error.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[3]
CACHE_DIR = REPO_ROOT / ".cache"
VENV_DIR = CACHE_DIR / "viam-sdk-venv"
LOCK_FILE = CACHE_DIR / "viam-sdk-venv.lock"
MARKER = ".ferry-sdkenv.json"

SDK_REQUIREMENT = "viam-sdk==0.85.1"
# The SDK's whole dependency closure, pinned to the versions the interop test was
# validated against, so a fresh machine builds the same environment.
CONSTRAINTS: tuple[str, ...] = (
    "dnspython==2.9.2",
    "googleapis-common-protos==1.76.0",
    "grpclib==0.4.9",
    "h2==4.4.1",
    "hpack==4.2.0",
    "hyperframe==6.1.0",
    "multidict==7.2.1",
    "protobuf==6.33.5",
    "pymongo==4.20.0",
    "typing-extensions==4.16.0",
)
PIP_TIMEOUT_S = 900.0

# pip output that means "the index could not be reached", as opposed to a broken build.
_NETWORK_ERRORS = re.compile(
    r"NewConnectionError|Max retries exceeded|Temporary failure in name resolution|"
    r"Name or service not known|Network is unreachable|Connection refused|"
    r"ConnectTimeoutError|ReadTimeoutError|ProxyError|SSLError|"
    r"Failed to establish a new connection|No route to host|timed out",
)


class SdkEnvUnavailable(Exception):
    """The SDK venv could not be built because PyPI is unreachable (a skip, not a failure)."""


def _fingerprint() -> dict[str, object]:
    """What the cached venv must have been built from to be reused."""
    spec = "\n".join((SDK_REQUIREMENT, *CONSTRAINTS))
    return {
        "requirement": SDK_REQUIREMENT,
        "constraints_sha256": hashlib.sha256(spec.encode()).hexdigest(),
        "python": ".".join(map(str, sys.version_info[:2])),
    }


def _python(venv: Path) -> Path:
    return venv / "bin" / "python"


def _is_ready(venv: Path) -> bool:
    """True when ``venv`` is a complete build of the current fingerprint."""
    marker = venv / MARKER
    try:
        recorded = json.loads(marker.read_text())
    except (OSError, ValueError):
        return False
    return recorded == _fingerprint() and _python(venv).exists()


def clean_env() -> dict[str, str]:
    """The environment for the SDK's interpreter: nothing of the project venv leaks in."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSTARTUP"}
    }
    env["PYTHONNOUSERSITE"] = "1"
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    env["PIP_NO_INPUT"] = "1"
    return env


def _run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv,
        capture_output=True,
        text=True,
        timeout=PIP_TIMEOUT_S,
        env=clean_env(),
        check=False,
    )


def _build(venv: Path) -> None:
    """Creates ``venv`` from scratch and installs the pinned SDK into it."""
    shutil.rmtree(venv, ignore_errors=True)
    made = _run([sys.executable, "-m", "venv", str(venv)])
    if made.returncode != 0:
        raise RuntimeError(f"python -m venv {venv} failed:\n{made.stdout}{made.stderr}")
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as constraints:
        constraints.write("\n".join(CONSTRAINTS) + "\n")
    try:
        installed = _run(
            [
                str(_python(venv)),
                "-m",
                "pip",
                "install",
                "--quiet",
                "--retries",
                "2",
                "--timeout",
                "30",
                "--constraint",
                constraints.name,
                SDK_REQUIREMENT,
            ]
        )
    finally:
        Path(constraints.name).unlink(missing_ok=True)
    if installed.returncode != 0:
        output = f"{installed.stdout}{installed.stderr}".strip()
        shutil.rmtree(venv, ignore_errors=True)
        network = [line for line in output.splitlines() if _NETWORK_ERRORS.search(line)]
        if network:
            raise SdkEnvUnavailable(
                f"PyPI unreachable, cannot install {SDK_REQUIREMENT}: {network[-1].strip()}"
            )
        raise RuntimeError(f"pip install {SDK_REQUIREMENT} failed:\n{output}")
    probe = _run([str(_python(venv)), "-c", "import viam.app.viam_client"])
    if probe.returncode != 0:
        raise RuntimeError(f"{SDK_REQUIREMENT} installed but does not import:\n{probe.stderr}")
    (venv / MARKER).write_text(json.dumps(_fingerprint()))


def ensure_sdk_python() -> Path:
    """The isolated venv's interpreter, building the venv first if needed.

    Raises :class:`SdkEnvUnavailable` when PyPI is unreachable.
    """
    if _is_ready(VENV_DIR):
        return _python(VENV_DIR)
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    with LOCK_FILE.open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if not _is_ready(VENV_DIR):  # another worker may have built it meanwhile
                _build(VENV_DIR)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    return _python(VENV_DIR)

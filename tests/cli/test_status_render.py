"""``ferry status`` renders the sync and retention sections so a person can act on them."""

from __future__ import annotations

from actors import cli
from actors.status_cmd import render

SYNC = {
    "mode": "resumable",
    "exactly_once": True,
    "online": False,
    "offline_error": "OpenUpload: connection refused",
    "error": "",
    "selective_syncer": "should_sync: false",
    "scheduled": True,
    "interval_s": 6.0,
    "next_pass_in_s": 2.5,
    "cloud": "cloud.example:443",
    "counters": {"files_uploaded": 3, "records_uploaded": 30, "bytes_sent": 4096,
                 "files_deleted": 3, "files_failed": 1, "bytes_resent": 1024,
                 "interruptions": 1},
    "files": [{"path": "/c/a.capture", "phase": "backoff", "size": 2048,
               "bytes_confirmed": 1024, "attempt": 4, "next_attempt_in_s": 1.6,
               "last_error": "offline"}],
}  # fmt: skip
RETENTION = {
    "deleted": {"disk_full": {"files": 2, "readings": 40, "bytes": 8192},
                "size_cap": {"files": 0, "readings": 0, "bytes": 0}},
    "warning": "disk 93.0% used but the capture dir holds 10.0% of it",
    "last_error": "",
}  # fmt: skip


def test_sync_section_shows_offline_state_counters_and_files_in_backoff():
    text = render({"sync": SYNC})
    assert "OFFLINE (OpenUpload: connection refused)" in text
    assert "uploaded 3 files (30 readings" in text
    assert "failed 1" in text
    assert "re-sent 1.0 KiB after 1 interruptions" in text
    assert "backoff" in text
    assert "attempt 4, retry in 1.6 s: offline" in text
    assert "selective syncer: should_sync: false" in text


def test_viam_compatible_mode_says_exactly_once_does_not_hold():
    text = render({"sync": {**SYNC, "mode": "viam-compatible", "exactly_once": False}})
    assert "exactly-once does NOT hold" in text


def test_a_sync_without_cloud_shows_why():
    assert "sync: no cloud section" in render({"sync": {"error": "no cloud section"}})


def test_retention_section_shows_deletions_by_reason_and_the_warning():
    text = render({"retention": RETENTION})
    assert "retention deleted (disk_full): 2 files, 40 readings, 8.0 KiB" in text
    assert "size_cap" not in text
    assert "retention warning: disk 93.0% used" in text


def test_status_without_an_agent_says_so_instead_of_a_traceback(capsys):
    code = cli.main(["status", "--api", "127.0.0.1:1"])
    err = capsys.readouterr().err
    assert code == 1
    assert "ferry status: no agent answers at 127.0.0.1:1" in err
    assert "Traceback" not in err

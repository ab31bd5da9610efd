"""The per-file sync state machine (``actors.sync.fsm``): examples, then a model-based test.

The examples walk every arrow of the module docstring's diagram. The
``RuleBasedStateMachine`` (STYLE.md §19a) runs the machine against a plain model
of the cloud (the compare-and-set upload of docs/resumable-upload.md) over a
lossy network, with robot crashes and cancellations, and checks ARCHITECTURE.md's
sync guarantees after every step: exactly once, delete only after confirm,
resume re-sends at most one chunk, waits of at most an hour with no attempt
limit, and liveness once the network heals.
"""

from __future__ import annotations

import dataclasses
from enum import Enum
from typing import final

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from actors.sync.backoff import MAX_DELAY_S, backoff_delay
from actors.sync.fsm import (
    TERMINAL,
    Action,
    Batched,
    Cancel,
    ChunkWritten,
    Delete,
    Deleted,
    Event,
    Failed,
    Failure,
    FileState,
    Finish,
    Finished,
    InvalidTransition,
    Kick,
    MoveToFailed,
    Open,
    Opened,
    Phase,
    SendChunk,
    Start,
    TimerFired,
    Unsupported,
    UploadWhole,
    Wait,
    WholeUploaded,
    initial,
    step,
)

UID = "up-1"
SIZE = 10
CHUNK = 4


def run(state: FileState, *events: Event) -> tuple[FileState, list[Action]]:
    """Applies ``events`` in order; returns the last state and the last step's actions."""
    actions: list[Action] = []
    for event in events:
        state, actions = step(state, event)
    return state, actions


def reach(phase: Phase, *, size: int = SIZE, chunk: int = CHUNK) -> FileState:
    """A state in ``phase``, reached through the machine itself (never built by hand)."""
    fresh = initial(size, chunk)
    opening = (Start(),)
    paths: dict[Phase, tuple[FileState, tuple[Event, ...]]] = {
        Phase.PENDING: (fresh, ()),
        Phase.OPENING: (fresh, opening),
        Phase.UPLOADING: (fresh, (*opening, Opened(UID, 0, False))),
        Phase.FINISHING: (fresh, (*opening, Opened(UID, size, False))),
        Phase.WHOLE: (initial(size, chunk, compat=True), opening),
        Phase.CONFIRMED: (fresh, (*opening, Opened(UID, size, True))),
        Phase.BACKOFF: (fresh, (*opening, Failed(Failure.TRANSIENT, "boom"))),
        Phase.DELETED: (fresh, (*opening, Opened(UID, size, True), Deleted())),
        Phase.FAILED: (fresh, (*opening, Failed(Failure.PERMANENT, "denied"))),
        Phase.CANCELLED: (fresh, (Cancel(),)),
    }
    start, events = paths[phase]
    state, _ = run(start, *events)
    assert state.phase is phase
    return state


NON_TERMINAL = [phase for phase in Phase if phase not in TERMINAL]
ACTIVE = [Phase.OPENING, Phase.UPLOADING, Phase.FINISHING, Phase.WHOLE]


# ---------------------------------------------------------------- construction


def test_a_new_file_is_pending_with_nothing_sent():
    state = initial(SIZE, CHUNK)
    assert (state.phase, state.offset, state.attempt, state.confirmed) == (
        Phase.PENDING,
        0,
        0,
        False,
    )
    assert not state.terminal


@pytest.mark.parametrize(("size", "chunk"), [(-1, 4), (10, 0), (10, -3)])
def test_a_negative_size_or_empty_chunk_is_rejected(size: int, chunk: int):
    with pytest.raises(ValueError, match="must be"):
        initial(size, chunk)


# ---------------------------------------------------------------- the happy paths


def test_start_opens_the_upload():
    state, actions = step(initial(SIZE, CHUNK), Start())
    assert state.phase is Phase.OPENING
    assert actions == [Open()]


def test_compat_initial_state_goes_straight_to_a_whole_file_upload():
    state, actions = step(initial(SIZE, CHUNK, compat=True), Start())
    assert state.phase is Phase.WHOLE
    assert actions == [UploadWhole()]


def test_opened_at_zero_sends_the_first_chunk():
    state, actions = step(reach(Phase.OPENING), Opened(UID, 0, False))
    assert state.phase is Phase.UPLOADING
    assert (state.upload_id, state.offset, state.sent_upto) == (UID, 0, CHUNK)
    assert actions == [SendChunk(UID, 0, CHUNK)]


def test_opened_mid_file_resumes_at_the_committed_offset():
    state, actions = step(reach(Phase.OPENING), Opened(UID, 7, False))
    assert state.offset == 7
    assert actions == [SendChunk(UID, 7, SIZE - 7)], "the last chunk is the remainder"


def test_chunks_follow_the_cloud_offset_then_finish():
    state = reach(Phase.UPLOADING)
    state, actions = step(state, ChunkWritten(4, accepted=True))
    assert actions == [SendChunk(UID, 4, 4)]
    state, actions = step(state, ChunkWritten(8, accepted=True))
    assert actions == [SendChunk(UID, 8, 2)]
    state, actions = step(state, ChunkWritten(10, accepted=True))
    assert state.phase is Phase.FINISHING
    assert state.offset == SIZE
    assert actions == [Finish(UID)]
    assert state.resent_bytes == 0


def test_a_rejected_chunk_continues_at_the_cloud_offset():
    """Compare-and-set: accepted or not, the server's committed offset wins."""
    state = reach(Phase.UPLOADING)
    state, actions = step(state, ChunkWritten(6, accepted=False))
    assert state.phase is Phase.UPLOADING
    assert actions == [SendChunk(UID, 6, 4)]


def test_finished_confirms_then_deletes():
    state, actions = step(reach(Phase.FINISHING), Finished("file-9"))
    assert state.phase is Phase.CONFIRMED
    assert (state.confirmed, state.file_id) == (True, "file-9")
    assert actions == [Delete()]
    state, actions = step(state, Deleted())
    assert state.phase is Phase.DELETED
    assert state.terminal
    assert actions == []


def test_opened_finished_deletes_without_uploading():
    """Robot crashed after the confirmation: the next open sees FINISHED (guarantee 3)."""
    state, actions = step(reach(Phase.OPENING), Opened(UID, SIZE, finished=True))
    assert state.phase is Phase.CONFIRMED
    assert state.confirmed
    assert state.offset == SIZE
    assert actions == [Delete()]
    assert state.sent_upto == 0, "nothing was sent"


def test_a_batched_file_is_confirmed_then_deleted_as_sent_whole():
    """UploadFiles stored it: confirmation (guarantee 3), the whole file counted as sent."""
    state, actions = step(reach(Phase.OPENING), Batched("file-5"))
    assert state.phase is Phase.CONFIRMED
    assert (state.confirmed, state.file_id, state.offset) == (True, "file-5", SIZE)
    assert state.sent_upto == SIZE
    assert state.resent_bytes == 0
    assert actions == [Delete()]


def test_unsupported_falls_back_to_a_whole_file_upload():
    state, actions = step(reach(Phase.OPENING), Unsupported())
    assert state.phase is Phase.WHOLE
    assert state.compat
    assert actions == [UploadWhole()]


def test_whole_uploaded_confirms_then_deletes():
    state, actions = step(reach(Phase.WHOLE), WholeUploaded("file-3"))
    assert state.phase is Phase.CONFIRMED
    assert state.file_id == "file-3"
    assert actions == [Delete()]


def test_a_zero_length_remainder_finishes_at_once():
    state, actions = step(reach(Phase.OPENING, size=0), Opened(UID, 0, False))
    assert state.phase is Phase.FINISHING
    assert actions == [Finish(UID)]


# ---------------------------------------------------------------- chunk size


def test_the_server_max_chunk_bytes_lowers_the_chunk_size():
    state, actions = step(reach(Phase.OPENING), Opened(UID, 0, False, max_chunk_bytes=3))
    assert state.chunk_bytes == 3
    assert actions == [SendChunk(UID, 0, 3)]
    state, actions = step(state, ChunkWritten(3, accepted=True))
    assert actions == [SendChunk(UID, 3, 3)]


@pytest.mark.parametrize("max_chunk", [0, CHUNK, CHUNK + 1, 1 << 22])
def test_a_server_limit_at_or_above_the_chunk_size_changes_nothing(max_chunk: int):
    state, actions = step(reach(Phase.OPENING), Opened(UID, 0, False, max_chunk_bytes=max_chunk))
    assert state.chunk_bytes == CHUNK
    assert actions == [SendChunk(UID, 0, CHUNK)]


# ---------------------------------------------------------------- bad cloud offsets


@pytest.mark.parametrize("committed", [SIZE + 1, SIZE + 1000, -1])
def test_an_impossible_committed_offset_on_open_parks_the_file(committed: int):
    state, actions = step(reach(Phase.OPENING), Opened(UID, committed, False))
    assert state.phase is Phase.FAILED
    assert actions == [MoveToFailed(state.reason)]
    assert str(committed) in state.reason


def test_an_impossible_committed_offset_on_write_parks_the_file():
    state, actions = step(reach(Phase.UPLOADING), ChunkWritten(SIZE + 1, accepted=True))
    assert state.phase is Phase.FAILED
    assert actions == [MoveToFailed(state.reason)]


# ---------------------------------------------------------------- failures and backoff


@pytest.mark.parametrize("phase", ACTIVE)
@pytest.mark.parametrize("kind", [Failure.TRANSIENT, Failure.OFFLINE])
def test_a_transient_failure_backs_off(phase: Phase, kind: Failure):
    state, actions = step(reach(phase), Failed(kind, "down"))
    assert state.phase is Phase.BACKOFF
    assert (state.attempt, state.delay_s, state.reason) == (1, 0.2, "down")
    assert state.offline is (kind is Failure.OFFLINE)
    assert actions == [Wait(0.2)]


@pytest.mark.parametrize(
    ("phase", "interrupted"),
    [
        (Phase.OPENING, False),
        (Phase.UPLOADING, True),
        (Phase.FINISHING, True),
        (Phase.WHOLE, False),
    ],
)
def test_only_a_failure_mid_upload_counts_as_an_interruption(phase: Phase, interrupted: bool):
    state, _ = step(reach(phase), Failed(Failure.TRANSIENT, "x"))
    assert state.interruptions == int(interrupted)


def test_the_wait_uses_the_failure_jitter():
    state, actions = step(reach(Phase.OPENING), Failed(Failure.TRANSIENT, "x", jitter=0.5))
    assert actions == [Wait(backoff_delay(1, 0.5))]
    assert state.delay_s == pytest.approx(0.22)


@pytest.mark.parametrize(
    ("phase", "resumed", "action"),
    [
        (Phase.OPENING, Phase.OPENING, Open()),
        (Phase.UPLOADING, Phase.OPENING, Open()),
        (Phase.FINISHING, Phase.OPENING, Open()),
        (Phase.WHOLE, Phase.WHOLE, UploadWhole()),
        (Phase.CONFIRMED, Phase.CONFIRMED, Delete()),
    ],
)
def test_the_timer_resumes_where_the_file_stands(phase: Phase, resumed: Phase, action: Action):
    state, _ = step(reach(phase), Failed(Failure.TRANSIENT, "x"))
    state, actions = step(state, TimerFired())
    assert state.phase is resumed
    assert actions == [action]
    assert state.attempt == 1, "the attempt count is kept until the confirmation"


def test_repeated_failures_double_the_wait():
    state = reach(Phase.OPENING)
    waits = []
    for _ in range(5):
        state, actions = step(state, Failed(Failure.OFFLINE, "x"))
        waits.append(actions)
        state, _ = step(state, TimerFired())
    assert waits == [[Wait(0.2)], [Wait(0.4)], [Wait(0.8)], [Wait(1.6)], [Wait(3.2)]]


def test_there_is_no_attempt_limit():
    """Guarantee 5: after thousands of failures the file still retries, an hour apart."""
    state = reach(Phase.UPLOADING)
    for attempt in range(1, 2001):
        state, actions = step(state, Failed(Failure.TRANSIENT, "x", jitter=0.9))
        assert state.phase is Phase.BACKOFF
        assert actions == [Wait(backoff_delay(attempt, 0.9))]
        assert actions[0].delay_s <= MAX_DELAY_S
        state, actions = step(state, TimerFired())
        assert actions == [Open()]
    assert state.attempt == 2000
    assert state.delay_s == MAX_DELAY_S


def test_the_confirmation_resets_the_attempt_count():
    state, _ = run(
        reach(Phase.OPENING),
        Failed(Failure.TRANSIENT, "x"),
        TimerFired(),
        Failed(Failure.OFFLINE, "x"),
        TimerFired(),
    )
    assert (state.attempt, state.offline) == (2, True)
    state, _ = step(state, Opened(UID, SIZE, finished=True))
    assert (state.attempt, state.delay_s, state.offline) == (0, 0.0, False)


def test_resume_resends_at_most_the_chunk_in_flight():
    """Guarantee 4: the request was lost, so the cloud still has 4 bytes; resend 4..8 only."""
    state, _ = run(reach(Phase.UPLOADING), ChunkWritten(4, accepted=True))
    state, actions = run(state, Failed(Failure.OFFLINE, "x"), TimerFired(), Opened(UID, 4, False))
    assert actions == [SendChunk(UID, 4, 4)]
    assert (state.interruptions, state.resent_bytes) == (1, 4)


def test_resume_after_a_lost_acknowledgement_resends_nothing():
    """The cloud committed the chunk but the answer was lost: continue after it."""
    state, _ = run(reach(Phase.UPLOADING), ChunkWritten(4, accepted=True))
    state, actions = run(state, Failed(Failure.TRANSIENT, "x"), TimerFired(), Opened(UID, 8, False))
    assert actions == [SendChunk(UID, 8, 2)]
    assert (state.interruptions, state.resent_bytes) == (1, 0)


def test_a_lost_finish_answer_reopens_and_deletes_without_uploading():
    state, _ = run(reach(Phase.FINISHING), Failed(Failure.TRANSIENT, "x"), TimerFired())
    state, actions = step(state, Opened(UID, SIZE, finished=True))
    assert actions == [Delete()]
    assert state.resent_bytes == 0


# ---------------------------------------------------------------- permanent failures


@pytest.mark.parametrize("phase", ACTIVE)
def test_a_permanent_failure_moves_the_file_to_failed(phase: Phase):
    state, actions = step(reach(phase), Failed(Failure.PERMANENT, "corrupt at 12"))
    assert state.phase is Phase.FAILED
    assert state.reason == "corrupt at 12"
    assert actions == [MoveToFailed("corrupt at 12")]


@pytest.mark.parametrize("kind", list(Failure))
def test_a_failed_delete_after_confirmation_retries_the_delete_never_the_upload(kind: Failure):
    """Once confirmed, even a permanent error only delays the delete (guarantee 3)."""
    state, actions = step(reach(Phase.CONFIRMED), Failed(kind, "EACCES"))
    assert state.phase is Phase.BACKOFF
    assert state.confirmed
    assert actions == [Wait(0.2)]
    state, actions = step(state, TimerFired())
    assert state.phase is Phase.CONFIRMED
    assert actions == [Delete()]
    state, actions = step(state, Failed(kind, "EACCES"))
    assert actions == [Wait(0.4)]
    state, actions = step(state, Kick())
    assert actions == [Delete()]
    state, actions = step(state, Deleted())
    assert state.phase is Phase.DELETED


# ---------------------------------------------------------------- Cancel and Kick


@pytest.mark.parametrize("phase", NON_TERMINAL)
def test_cancel_stops_every_non_terminal_phase(phase: Phase):
    before = reach(phase)
    state, actions = step(before, Cancel())
    assert state.phase is Phase.CANCELLED
    assert state.terminal
    assert actions == [], "the file stays where it is"
    assert dataclasses.replace(state, phase=phase) == before, "only the phase changes"


@pytest.mark.parametrize("phase", sorted(TERMINAL, key=lambda p: p.value))
def test_cancel_is_ignored_in_terminal_phases(phase: Phase):
    before = reach(phase)
    assert step(before, Cancel()) == (before, [])


@pytest.mark.parametrize("timer", [TimerFired(), Kick()])
def test_kick_in_backoff_resumes_now_and_keeps_the_attempt_count(timer: Event):
    state, _ = run(reach(Phase.OPENING), Failed(Failure.TRANSIENT, "x"), TimerFired())
    state, _ = step(state, Failed(Failure.TRANSIENT, "x"))
    assert state.attempt == 2
    state, actions = step(state, timer)
    assert state.phase is Phase.OPENING
    assert actions == [Open()]
    assert state.attempt == 2
    state, actions = step(state, Failed(Failure.TRANSIENT, "x"))
    assert state.attempt == 3
    assert actions == [Wait(0.8)], "the next wait continues the doubling"


@pytest.mark.parametrize("phase", [p for p in NON_TERMINAL if p is not Phase.BACKOFF])
def test_kick_outside_backoff_is_a_no_op(phase: Phase):
    before = reach(phase)
    assert step(before, Kick()) == (before, [])


@pytest.mark.parametrize("phase", sorted(TERMINAL, key=lambda p: p.value))
def test_kick_in_a_terminal_phase_is_a_no_op(phase: Phase):
    before = reach(phase)
    assert step(before, Kick()) == (before, [])


# ---------------------------------------------------------------- invalid events


EVENTS: list[Event] = [
    Start(),
    Opened(UID, 0, False),
    ChunkWritten(0, accepted=True),
    Finished("f"),
    Batched("f"),
    WholeUploaded("f"),
    Unsupported(),
    Failed(Failure.TRANSIENT, "x"),
    TimerFired(),
    Kick(),
    Deleted(),
    Cancel(),
]

ACCEPTED: dict[Phase, set[type]] = {
    Phase.PENDING: {Start, Kick, Cancel},
    Phase.OPENING: {Opened, Batched, Unsupported, Failed, Kick, Cancel},
    Phase.UPLOADING: {ChunkWritten, Failed, Kick, Cancel},
    Phase.FINISHING: {Finished, Failed, Kick, Cancel},
    Phase.WHOLE: {WholeUploaded, Failed, Kick, Cancel},
    Phase.CONFIRMED: {Deleted, Failed, Kick, Cancel},
    Phase.BACKOFF: {TimerFired, Kick, Cancel},
    Phase.DELETED: {Kick, Cancel},
    Phase.FAILED: {Kick, Cancel},
    Phase.CANCELLED: {Kick, Cancel},
}

INVALID = [
    pytest.param(phase, event, id=f"{phase.value}-{type(event).__name__}")
    for phase in Phase
    for event in EVENTS
    if type(event) not in ACCEPTED[phase]
]


@pytest.mark.parametrize(("phase", "event"), INVALID)
def test_an_event_the_phase_cannot_receive_raises(phase: Phase, event: Event):
    with pytest.raises(InvalidTransition, match=phase.value):
        step(reach(phase), event)


def test_a_stale_timer_after_a_kick_raises():
    """The shell must cancel the timer when a Kick resumes (STYLE.md §11)."""
    state, _ = run(reach(Phase.OPENING), Failed(Failure.TRANSIENT, "x"), Kick())
    with pytest.raises(InvalidTransition):
        step(state, TimerFired())


# ================================================================ model-based test


class Outcome(Enum):
    """What the lossy network does with one request."""

    OK = "delivered and answered"
    DUPLICATED = "delivered and answered; a stale copy stays in the network"
    REQUEST_LOST = "lost before the cloud"
    ANSWER_LOST = "applied by the cloud, answer lost"
    UNCOMMITTED = "received by the cloud, which crashed before committing"
    PERMANENT = "rejected for good"


@final
@dataclasses.dataclass(frozen=True)
class Fate:
    """How one action ends: the network's outcome, the failure's kind and jitter; for a
    ``Wait``, whether a manual sync (``Kick``) ends it before the timer."""

    outcome: Outcome
    kind: Failure = Failure.TRANSIENT
    jitter: float = 0.0
    kick: bool = False


PERFECT = Fate(Outcome.OK)

# Weighted by repetition; OK first so failing examples shrink towards a good network.
# A permanent error is rare (1 %), so most runs exercise retries and reach DELETED.
OUTCOMES = st.sampled_from(
    [Outcome.OK] * 50
    + [Outcome.DUPLICATED, Outcome.REQUEST_LOST, Outcome.ANSWER_LOST, Outcome.UNCOMMITTED] * 12
    + [Outcome.PERMANENT]
)
FATES = st.builds(
    Fate,
    outcome=OUTCOMES,
    kind=st.sampled_from([Failure.TRANSIENT, Failure.OFFLINE]),
    # Cheap to draw; test_backoff.py covers the whole [0, 1) range.
    jitter=st.sampled_from([0.0, 0.5, 0.25, 0.999_999]),
    kick=st.booleans(),
)
IN_FLIGHT = st.sampled_from(["not sent", "received", "applied"])


@dataclasses.dataclass
class ModelCloud:
    """The cloud as a plain model: one upload, compare-and-set writes, idempotent finish."""

    upload_id: str
    size: int
    max_chunk_bytes: int
    resumable: bool
    committed: int = 0
    finished: bool = False
    materialized: int = 0
    received: list[int] = dataclasses.field(default_factory=list)

    def __post_init__(self) -> None:
        self.received = [0] * self.size

    def open(self) -> Event:
        if not self.resumable:
            return Unsupported()
        return Opened(self.upload_id, self.committed, self.finished, self.max_chunk_bytes)

    def write(self, chunk: SendChunk, *, commit: bool = True, count: bool = True) -> Event:
        # What the server rejects as INVALID_ARGUMENT: a correct client never sends it.
        assert chunk.upload_id == self.upload_id
        assert chunk.length > 0, chunk
        assert chunk.offset + chunk.length <= self.size, chunk
        assert self.max_chunk_bytes == 0 or chunk.length <= self.max_chunk_bytes, chunk
        if count:
            for at in range(chunk.offset, chunk.offset + chunk.length):
                self.received[at] += 1
        accepted = commit and chunk.offset == self.committed and not self.finished
        if accepted:
            self.committed += chunk.length
        return ChunkWritten(self.committed, accepted)

    def finish(self, upload_id: str) -> Event:
        assert upload_id == self.upload_id
        assert self.committed == self.size, "FinishUpload before every byte was committed"
        if not self.finished:
            self.finished = True
            self.materialized += 1
        return Finished(f"file-of-{self.upload_id}")

    def upload_whole(self) -> Event:
        assert not self.resumable, "a whole-file upload to a resumable cloud"
        self.materialized += 1
        return WholeUploaded(f"whole-{self.materialized}")

    @property
    def has_file(self) -> bool:
        """Whether the cloud durably holds the file (the precondition of a delete)."""
        return self.finished if self.resumable else self.materialized >= 1

    @property
    def twice_received_bytes(self) -> int:
        return sum(max(0, n - 1) for n in self.received)


class SyncAgainstModelCloud(RuleBasedStateMachine):
    """Files synced one after another over a lossy network, across robot crashes.

    ``self.state`` is the machine under test; everything else is the model: the
    cloud, the action in flight, the network's stale copies, the local file, and
    independent counts of interruptions and re-sent bytes. Hypothesis orders rules
    by argument count, then name, so ``deliver`` comes first: the simplest programs
    (and shrunk failures) are runs of deliveries.
    """

    def __init__(self) -> None:
        super().__init__()
        self.chunk = 1
        self.max_chunk = 0
        self.cloud_kind = "resumable"
        self.files = 0
        self.cloud = ModelCloud("up-0", 1, 0, resumable=True)
        self.state = initial(1, 1)
        self.pending: list[Action] = []
        self.stale: list[Action] = []
        self.local = "present"  # or "deleted", "failed"
        self.healed = False
        self.permanent_seen = False
        self.deliveries = 0
        self.extra_whole_uploads = 0  # whole uploads the client never heard of (Viam's gap)
        self.interruptions = 0  # model count, across lives
        self.life_sent: set[int] = set()
        self.life_resent = 0
        self.life_interruptions = 0

    # ------------------------------------------------------------ plumbing

    @property
    def compat(self) -> bool:
        return self.cloud_kind == "legacy-configured"

    def new_file(self, size: int) -> None:
        """A new file (a new identity, so a new upload at the cloud) enters sync."""
        self.files += 1
        resumable = self.cloud_kind == "resumable"
        max_chunk = self.max_chunk if resumable else 0
        self.cloud = ModelCloud(f"up-{self.files}", size, max_chunk, resumable=resumable)
        self.stale = []
        self.local = "present"
        self.permanent_seen = False
        self.extra_whole_uploads = 0
        self.interruptions = 0
        self.start_life()

    def start_life(self) -> None:
        """The walker finds the file (again): a fresh machine, nothing remembered."""
        self.state = initial(self.cloud.size, self.chunk, compat=self.compat)
        self.pending = []
        self.life_sent = set()
        self.life_resent = 0
        self.life_interruptions = 0
        self.feed(Start())

    def feed(self, event: Event) -> None:
        before = self.state
        self.state, actions = step(self.state, event)
        assert len(actions) <= 1, actions
        if isinstance(event, Failed) and (event.kind is not Failure.PERMANENT or before.confirmed):
            # No attempt limit: every non-fatal failure waits and retries.
            assert self.state.phase is Phase.BACKOFF
            assert actions == [Wait(backoff_delay(self.state.attempt, event.jitter))]
        for action in actions:
            self.check_emitted(action)
        self.pending.extend(actions)
        assert len(self.pending) <= 1, f"more than one action in flight: {self.pending}"

    def check_emitted(self, action: Action) -> None:
        """Checks an action at the moment the machine emits it."""
        cloud = self.cloud
        match action:
            case SendChunk(offset=offset, length=length):
                assert cloud.resumable
                assert not cloud.finished, "uploading again after the cloud finished"
                assert offset == cloud.committed, (
                    f"chunk at {offset}, cloud committed {cloud.committed}"
                )
                assert 0 < length <= self.chunk
                sent = set(range(offset, offset + length))
                self.life_resent += len(sent & self.life_sent)
                self.life_sent |= sent
            case Finish():
                assert not cloud.finished, "finishing again after the cloud finished"
                assert cloud.committed == cloud.size
            case UploadWhole():
                assert not cloud.resumable
            case Open():
                assert not self.compat
            case Delete():
                assert cloud.has_file, "Delete before the cloud durably has the file"
            case Wait(delay_s=delay):
                assert 0 < delay <= MAX_DELAY_S
            case MoveToFailed():
                assert self.permanent_seen, "parked without a permanent error"

    def apply_at_cloud(self, action: Action, *, commit: bool = True) -> Event | None:
        """The cloud's side of ``action``; its answer, or None when it has none."""
        match action:
            case Open():
                return self.cloud.open()
            case SendChunk():
                return self.cloud.write(action, commit=commit)
            case Finish(upload_id=upload_id):
                return self.cloud.finish(upload_id) if commit else None
            case UploadWhole():
                return self.cloud.upload_whole() if commit else None
            case _:
                return None

    def execute(self, action: Action, fate: Fate) -> None:
        """Runs ``action`` (popped from ``pending``) and feeds its outcome back."""
        self.deliveries += 1
        delivered = fate.outcome in (Outcome.OK, Outcome.DUPLICATED)
        match action:
            case Wait():
                self.feed(Kick() if fate.kick else TimerFired())
            case MoveToFailed():
                self.local = "failed"
            case Delete() if delivered:
                self.local = "deleted"
                self.feed(Deleted())
            case Delete():
                self.fail(fate)
            case _ if delivered:
                answer = self.apply_at_cloud(action)
                assert answer is not None
                if fate.outcome is Outcome.DUPLICATED and isinstance(action, SendChunk | Finish):
                    self.stale.append(action)
                self.feed(answer)
            case _:
                self.lose(action, fate)

    def lose(self, action: Action, fate: Fate) -> None:
        """A request that failed, after reaching the cloud or not."""
        if fate.outcome is Outcome.ANSWER_LOST:
            self.apply_at_cloud(action)
            if isinstance(action, UploadWhole):
                self.extra_whole_uploads += 1
        elif fate.outcome is Outcome.UNCOMMITTED:
            self.apply_at_cloud(action, commit=False)
        if isinstance(action, SendChunk | Finish) and fate.outcome is not Outcome.PERMANENT:
            self.interruptions += 1  # a permanent error parks the file: nothing resumes
            self.life_interruptions += 1
        self.fail(fate)

    def fail(self, fate: Fate) -> None:
        kind = fate.kind
        if fate.outcome is Outcome.PERMANENT:
            self.permanent_seen = True
            kind = Failure.PERMANENT
        self.feed(Failed(kind, fate.outcome.value, fate.jitter))

    def interrupt(self, in_flight: str) -> None:
        """The robot stops with ``pending`` in flight: it may or may not reach the cloud."""
        if not self.cloud.resumable and self.state.confirmed:
            # Viam's RPCs cannot ask the cloud whether it has the file: forgetting the
            # confirmation before the delete means uploading it again (the gap Ferry's
            # resumable service closes, docs/resumable-upload.md).
            self.extra_whole_uploads += 1
        for action in self.pending:
            if isinstance(action, SendChunk | Finish):
                self.interruptions += 1
            if isinstance(action, Delete) and in_flight == "applied":
                self.local = "deleted"
            elif in_flight != "not sent":
                if isinstance(action, UploadWhole) and in_flight == "applied":
                    self.extra_whole_uploads += 1
                self.apply_at_cloud(action, commit=in_flight == "applied")
        self.pending = []

    def deliver_stale(self, action: Action) -> None:
        """A duplicated request arrives late: compare-and-set makes it change nothing."""
        cloud = self.cloud
        before = (cloud.committed, cloud.finished, cloud.materialized)
        if isinstance(action, SendChunk):
            cloud.write(action, count=False)
        elif isinstance(action, Finish):
            cloud.finish(action.upload_id)
        assert (cloud.committed, cloud.finished, cloud.materialized) == before, action

    # ------------------------------------------------------------ rules

    @initialize(
        chunk=st.integers(1, 7),
        chunks=st.integers(1, 5),
        data=st.data(),
        max_chunk=st.sampled_from([0, 0, 1, 2, 3, 5, 8]),
        cloud_kind=st.sampled_from(["resumable"] * 4 + ["legacy", "legacy-configured"]),
    )
    def begin(self, chunk: int, chunks: int, data: st.DataObject, max_chunk: int, cloud_kind: str):
        """The cloud's kind and chunk limit, the robot's chunk size, and the first file."""
        self.chunk = chunk
        self.max_chunk = max_chunk
        self.cloud_kind = cloud_kind
        self.new_file(data.draw(st.integers(1, chunks * chunk), label="size"))

    @precondition(lambda self: bool(self.pending))
    @rule(fate=FATES)
    def deliver(self, fate: Fate):
        """Run the action in flight; the network decides its fate."""
        self.execute(self.pending.pop(0), PERFECT if self.healed else fate)

    @precondition(lambda self: self.local == "present" and not self.state.terminal)
    @rule(in_flight=IN_FLIGHT)
    def robot_crashes(self, in_flight: str):
        """The robot dies (maybe after the cloud applied its request) and restarts."""
        self.interrupt(in_flight)
        if self.local == "present":
            self.start_life()

    @precondition(lambda self: bool(self.stale))
    @rule(data=st.data())
    def stale_copy_arrives(self, data: st.DataObject):
        """A duplicated request reaches the cloud late."""
        self.deliver_stale(self.stale.pop(data.draw(st.integers(0, len(self.stale) - 1))))

    @precondition(lambda self: self.local != "present")
    @rule(size=st.integers(1, 35))
    def walker_finds_next_file(self, size: int):
        """The file left the sync directory; the next one starts (a new upload)."""
        for action in self.stale:
            self.deliver_stale(action)
        self.new_file(min(size, 5 * self.chunk))

    @precondition(lambda self: self.local == "present" and not self.state.terminal)
    @rule(in_flight=IN_FLIGHT)
    def worker_cancelled(self, in_flight: str):
        """Reconfigure or shutdown cancels the worker; the file stays, the next pass retries."""
        self.interrupt(in_flight)
        if self.local == "present":
            self.feed(Cancel())
            assert self.state.phase is Phase.CANCELLED
            assert not self.pending
            self.start_life()

    @precondition(lambda self: not self.healed and self.deliveries >= 15)
    @rule()
    def heal(self):
        """The network stops failing."""
        self.healed = True

    # ------------------------------------------------------------ invariants

    @invariant()
    def sync_guarantees(self):
        """ARCHITECTURE.md's sync guarantees, after every step."""
        cloud, state = self.cloud, self.state
        # 2. Exactly once.
        if cloud.resumable:
            assert cloud.materialized <= 1, "the cloud materialized the file twice"
        else:
            # Viam's one-shot RPCs cannot tell a lost answer from a lost request.
            assert cloud.materialized <= 1 + self.extra_whole_uploads
        # 3. Delete only after confirm; park only on a permanent error.
        if self.local == "deleted":
            assert cloud.has_file
        if state.phase is Phase.FAILED or self.local == "failed":
            assert self.permanent_seen
        # 4. Resume re-sends at most one chunk per interruption.
        assert state.resent_bytes == self.life_resent, "resent_bytes disagrees with the model"
        assert state.interruptions == self.life_interruptions
        assert state.resent_bytes <= state.chunk_bytes * state.interruptions
        # ... and independently, at the cloud, across every life of the file.
        assert cloud.twice_received_bytes <= self.chunk * self.interruptions
        # 5. A file in backoff waits at most an hour; a chunk goes to the committed offset.
        if state.phase is Phase.BACKOFF:
            assert self.pending == [Wait(state.delay_s)]
            assert 0 < state.delay_s <= MAX_DELAY_S
        if state.phase is Phase.UPLOADING and self.pending:
            (chunk,) = self.pending
            assert isinstance(chunk, SendChunk)
            assert chunk.offset == cloud.committed == state.offset
        assert 0 <= cloud.committed <= cloud.size

    # ------------------------------------------------------------ liveness

    def teardown(self):
        """Heal the network and drain: the file must leave the sync directory (guarantee 5)."""
        if self.files == 0:  # `begin` never ran
            return
        self.healed = True
        for _ in range(100):
            if self.local != "present":
                break
            assert self.pending, f"stuck without an action in {self.state}"
            self.execute(self.pending.pop(0), PERFECT)
            self.sync_guarantees()
        if self.local == "failed":
            assert self.permanent_seen
        else:
            assert self.local == "deleted", f"not synced on a healed network: {self.state}"
            # CONFIRMED when the robot crashed just after its delete reached the disk.
            assert self.state.phase in (Phase.DELETED, Phase.CONFIRMED)
            assert self.cloud.has_file


SyncAgainstModelCloud.TestCase.settings = settings(
    max_examples=200,
    stateful_step_count=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestSyncAgainstModelCloud = pytest.mark.slow(SyncAgainstModelCloud.TestCase)

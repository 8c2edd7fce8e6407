"""An operation's log in memory: followers that lag behind a flush still read memory; a line
is shown before it is stored only under a reserved number."""

from __future__ import annotations

import asyncio
import dataclasses

from server.model.records import LogEntry, LogLevel
from server.operations.live import LOG_RESERVE_BLOCK, LOG_RESERVE_MAX, RECENT_LINES, LiveOperation
from server.operations.streams import follow_log
from tests.unit.test_streams import running


def logged(count: int, durable: bool = False) -> LiveOperation:
    """An operation with `count` lines, all under reserved numbers (however many)."""
    live = LiveOperation(op=running(), durable_log=durable, reserved_through=max(count, LOG_RESERVE_BLOCK))
    for n in range(count):
        live.append_log(LogLevel.INFO, f"line {n + 1}")
    return live


def flush(live: LiveOperation) -> None:
    """What the state writer does once its transaction is committed."""
    live.stored(list(live.unflushed))


def sequences(lines: list[LogEntry] | None) -> list[int] | None:
    return None if lines is None else [line.sequence for line in lines]


def test_a_follower_behind_a_flush_reads_the_stored_lines_from_memory() -> None:
    live = logged(5)
    flush(live)
    live.append_log(LogLevel.INFO, "line 6")
    assert sequences(live.log_after(3)) == [4, 5, 6]
    assert sequences(live.log_after(0)) == [1, 2, 3, 4, 5, 6]
    assert sequences(live.log_after(6)) == []


def test_memory_keeps_only_the_recent_lines_and_says_when_the_database_must_answer() -> None:
    live = logged(2 * RECENT_LINES + 1)
    flush(live)
    assert len(live.recent) == RECENT_LINES
    oldest = live.recent[0].sequence
    assert live.log_after(oldest - 2) is None  # line `oldest - 1` is only in the database
    assert sequences(live.log_after(oldest - 1)) == list(range(oldest, 2 * RECENT_LINES + 2))


def test_a_resumed_operation_reads_older_lines_from_the_database() -> None:
    # Stored through 10, numbers reserved through 40: its next line is 41, shown once reserved.
    live = LiveOperation(
        op=dataclasses.replace(running(), last_sequence=10),
        flushed_through=10,
        reserved_through=40,
        numbered_through=40,
    )
    live.append_log(LogLevel.INFO, "after the restart")
    assert live.log_after(3) is None
    assert sequences(live.log_after(10)) == [] and live.op.last_sequence == 10
    live.reserved(live.reservation_wanted() or 0)
    assert sequences(live.log_after(10)) == [41] and live.op.last_sequence == 41
    flush(live)
    assert live.log_after(9) is None and sequences(live.log_after(40)) == [41]


def test_a_line_beyond_the_reserved_numbers_is_held_back_until_they_are_reserved() -> None:
    live = LiveOperation(op=running(), reserved_through=LOG_RESERVE_BLOCK)
    for n in range(LOG_RESERVE_BLOCK // 2):
        live.append_log(LogLevel.INFO, f"line {n + 1}")
    assert live.reservation_wanted() is None
    live.append_log(LogLevel.INFO, "past half of the block")
    wanted = live.reservation_wanted()
    assert wanted == LOG_RESERVE_BLOCK // 2 + 1 + LOG_RESERVE_BLOCK
    for _ in range(LOG_RESERVE_BLOCK):  # the job outruns the writer
        live.append_log(LogLevel.INFO, "more")
    # Neither the lines nor lastSequence name a number a crash could give to another line.
    assert live.op.last_sequence == LOG_RESERVE_BLOCK and not live.all_shown
    assert sequences(live.log_after(LOG_RESERVE_BLOCK - 1)) == [LOG_RESERVE_BLOCK]
    version = live.log_signal.version
    live.reserved(wanted)
    assert live.log_signal.version == version + 1 and live.all_shown
    assert sequences(live.log_after(LOG_RESERVE_BLOCK)) == list(range(LOG_RESERVE_BLOCK + 1, live.numbered_through + 1))
    flush(live)  # storing them shows them too, reserved or not
    assert live.op.last_sequence == live.flushed_through == live.numbered_through


def test_a_chatty_log_reserves_growing_blocks_so_it_wakes_the_writer_rarely() -> None:
    live = LiveOperation(op=running(), reserved_through=LOG_RESERVE_BLOCK)
    reservations = 0
    for _ in range(30_000):
        live.append_log(LogLevel.INFO, "an item")
        if (wanted := live.reservation_wanted()) is not None:
            live.reserved(wanted)
            reservations += 1
    assert live.all_shown and reservations < 30  # one per 1,000 lines at most (a fixed block: 300)
    assert live.reserved_through - live.numbered_through <= LOG_RESERVE_MAX  # the gap a crash may leave


def test_a_durable_log_shows_only_stored_lines_and_wakes_followers_when_they_are() -> None:
    live = logged(3, durable=True)
    assert sequences(live.log_after(0)) == [] and live.log_signal.version == 0
    flush(live)
    assert sequences(live.log_after(0)) == [1, 2, 3] and live.log_signal.version == 1


def test_progress_does_not_wake_log_followers() -> None:
    live = logged(1)
    before = live.log_signal.version
    live.update(progress=0.5)
    live.signal.fire()  # what publishing a progress change does
    assert live.log_signal.version == before
    live.append_log(LogLevel.INFO, "more")
    assert live.log_signal.version == before + 1


class NoDatabase:
    """A runner whose database must not be asked: every line is in memory."""

    def __init__(self, live: LiveOperation) -> None:
        self._live = live

    def live(self, op_id: str) -> LiveOperation | None:
        return None if self._live.closed else self._live

    async def read_log(self, *args: object, **kwargs: object) -> list[LogEntry]:
        raise AssertionError("read the database although memory had every line")


async def test_followers_read_the_last_lines_from_memory_after_the_operation_closed() -> None:
    live = logged(3)
    runner = NoDatabase(live)
    stream = follow_log(runner, "op_1")  # type: ignore[arg-type]
    assert [(await anext(stream)).sequence for _ in range(3)] == [1, 2, 3]
    waiting = asyncio.ensure_future(anext(stream))
    await asyncio.sleep(0)
    live.append_log(LogLevel.INFO, "Finished.")
    flush(live)
    live.closed = True  # the runner lets go of it here
    live.log_signal.fire()
    assert (await waiting).sequence == 4
    assert [entry async for entry in stream] == []


async def test_a_follower_of_an_ended_operation_waits_for_its_held_back_lines() -> None:
    live = LiveOperation(op=running(), reserved_through=1)
    live.append_log(LogLevel.INFO, "shown")
    live.append_log(LogLevel.INFO, "beyond the reservation")
    live.ended.set()  # its final state is in memory; storing it is still being retried
    runner = NoDatabase(live)
    stream = follow_log(runner, "op_1")  # type: ignore[arg-type]
    assert (await anext(stream)).sequence == 1
    waiting = asyncio.ensure_future(anext(stream))
    await asyncio.sleep(0)
    assert not waiting.done()  # not the end: a line is still to come
    flush(live)
    assert (await waiting).sequence == 2
    live.closed = True
    live.log_signal.fire()
    assert [entry async for entry in stream] == []


def test_a_url_with_credentials_in_a_line_is_masked_as_it_is_appended() -> None:
    """Every line reaches every viewer: a URL's user and password in one (a message quoted as a
    source or location gave it) are masked before anyone can follow or store it (issue 23 item 11)."""
    live = logged(0)
    entry = live.append_log(LogLevel.INFO, "Uploading to http://backup-user:s3cr3t@127.0.0.1:9000/bucket ...")
    assert entry.message == "Uploading to http://***@127.0.0.1:9000/bucket ..."
    plain = live.append_log(LogLevel.INFO, "Copied to share (mail admin@example.com)")
    assert plain.message == "Copied to share (mail admin@example.com)"
    assert [e.message for e in live.unflushed] == [entry.message, plain.message]

"""Actors scheduled on one event-loop thread: pykka actors without a thread each.

A ``pykka.ThreadingActor`` owns an OS thread, so every message from the market feed to a market's
actor is a thread hand-over, and under the GIL a hand-over is slow exactly when it matters: the
feed's thread keeps the interpreter while a burst of frames is buffered, and the actor it woke waits
for it (measured on loopback, 50 markets at 5,000 messages/s: tick-to-quote 70 us median / 258 us
p99 with a thread per market against 50 us / 114 us with the actors on the feed's thread;
``bench/tick_to_quote.py``).

``LoopActor`` keeps pykka's model (an ``ActorRef``, ``tell``/``ask``, ``on_start``/``on_stop``/
``on_failure``, the registry) but drains its mailbox on an ``ActorLoop``: one thread running an
asyncio loop, shared by many actors and by the market-data client, so a message from the feed is
handled on the thread that decoded it, right after the feed's callback returns. Messages from other
threads (execution reports, timers, control) wake the loop with ``call_soon_threadsafe``.

A ``LoopActor``'s ref is a ``LoopActorRef``: told on the loop's thread while no actor of the loop is
handling a message and nothing waits in the actor's inbox (the feed telling a frame's batch), it hands
the message to the actor at once, with no envelope, inbox or drain scheduled in between: on the
tick-to-quote path. Any other tell takes pykka's way (an envelope in the inbox, a drain scheduled), so
messages are still handled in order, one at a time, never re-entrantly.

Rules that come with it: a handler must not block (it holds up every actor on the loop and the
feed), and nothing on the loop's thread may ``ask`` an actor of the same loop (it would wait for
itself); other threads may ask as usual.

One time per input: an ``InputClock`` (``ActorLoop(clock=...)``, the sessions' clock in a trading
engine) reads the running clock once when an input reaches the loop (a callback from another
thread, here; a feed frame, in the feed's client) and answers that reading to every actor that
handles the input, and to whatever notes it (a session's recorder). A throttled requote falls due
on an input, or not, by the input's time: never by how long the loop took to get to the actor.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import sys
import threading
import weakref
from collections import deque
from collections.abc import Callable
from typing import Any

import pykka

from core.ports import Clock

log = logging.getLogger(__name__)


class InputClock:
    """The clock of an ``ActorLoop``'s actors: one reading of the running clock per input.

    ``with clock:`` around the handling of one input (a feed frame and everything its actors do
    about it; a message from another thread) reads ``base`` once; until the block ends, ``now_ns()``
    answers that reading, so every actor handling the input, and whatever notes it (a session's
    recorder), reads the same time. A nested block keeps the outer reading. Outside any input,
    ``now_ns()`` reads ``base``.

    A session's time is so the time its input reached the loop, not the running clock a few
    microseconds (on a loaded machine, a few hundred) later while its actor handles it: the replay
    of a session's recording (``sim.session_replay``), which runs the sessions at each input's
    recorded time, then reads what the session read, and a throttled requote falls due on the same
    input in both. Only the loop's thread enters; any thread may read.
    """

    __slots__ = ("_depth", "_t", "base")

    def __init__(self, base: Clock) -> None:
        #: The running clock (``adapters.clock.LiveClock`` live); what is timed, not decided, reads it.
        self.base = base
        self._t = 0
        self._depth = 0

    def now_ns(self) -> int:
        """The current input's time; the running clock's between inputs."""
        if self._depth:
            return self._t
        return self.base.now_ns()

    def __enter__(self) -> int:
        if not self._depth:
            self._t = self.base.now_ns()
        self._depth += 1
        return self._t

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self._depth -= 1


class ActorLoop:
    """A thread running an asyncio event loop for ``LoopActor``s (and coroutines such as a feed).

    ``clock``: every callback it runs for another thread (``call_soon``) is one input of it.
    """

    def __init__(self, name: str = "polymm-loop", clock: InputClock | None = None) -> None:
        self.loop = asyncio.new_event_loop()
        self.clock = clock
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._ident: int | None = None
        self._running = threading.Event()
        #: True while an actor's messages are being handled on the loop (no nested handling).
        self.draining = False
        self._actors: weakref.WeakSet[LoopActor] = weakref.WeakSet()
        self._actors_lock = threading.Lock()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self._ident = threading.get_ident()
        self.loop.call_soon(self._running.set)
        try:
            self.loop.run_forever()
        finally:
            self.loop.close()

    def start(self) -> None:
        """Start the thread and wait until its loop runs."""
        self._thread.start()
        self._running.wait()

    def in_loop(self) -> bool:
        """Whether the caller runs on the loop's thread."""
        return threading.get_ident() == self._ident

    def call_soon(self, fn: Callable[[], object]) -> None:
        """Run ``fn`` on the loop's thread as soon as it is free (from any thread), as one input."""
        if self.in_loop():
            self.loop.call_soon(self._input, fn)
        else:
            self.loop.call_soon_threadsafe(self._input, fn)

    def _input(self, fn: Callable[[], object]) -> None:
        clock = self.clock
        if clock is None:
            fn()
            return
        with clock:
            fn()

    def run_coroutine(self, coro: Any) -> Any:
        """Schedule a coroutine on the loop from another thread; returns its concurrent future."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop the actors still running on the loop, then the loop, and wait for its thread.

        Asks still queued to those actors fail with ``ActorDeadError`` rather than wait forever.
        """
        if not self._thread.is_alive():
            return

        def shutdown() -> None:
            self.stop_actors()
            self.loop.stop()

        self.loop.call_soon_threadsafe(shutdown)
        if not self.in_loop():
            self._thread.join(timeout_s)

    def stop_actors(self) -> None:
        """On the loop's thread: stop every actor of this loop and fail the asks queued to them."""
        with self._actors_lock:
            actors = list(self._actors)
        for actor in actors:
            if not actor.actor_stopped.is_set():
                actor._stop()  # pykka's own stop, on the actor's thread
            actor._actor_loop_teardown()

    def add(self, actor: LoopActor) -> None:
        """Remember an actor, so that stopping the loop stops it."""
        with self._actors_lock:
            self._actors.add(actor)


class LoopInbox:
    """pykka's inbox protocol (``put``/``get``/``empty``) over a deque drained on an ``ActorLoop``.

    ``append`` and ``popleft`` on a deque are atomic, so any thread may put.
    """

    __slots__ = ("_q", "wake")

    def __init__(self) -> None:
        self._q: deque[Any] = deque()
        #: Set by the actor: schedules a drain on its loop.
        self.wake: Callable[[], None] = lambda: None

    def put(self, envelope: Any) -> None:
        """Add a message and make sure the actor will drain it."""
        self._q.append(envelope)
        self.wake()

    def get(self) -> Any:
        """The oldest message (the caller checked ``empty``)."""
        return self._q.popleft()

    def get_nowait(self) -> Any:
        """The oldest message, or ``queue.Empty``."""
        try:
            return self._q.popleft()
        except IndexError:
            raise queue.Empty from None

    def empty(self) -> bool:
        """Whether no message waits."""
        return not self._q


class LoopActor(pykka.Actor):
    """A pykka actor whose messages are handled on an ``ActorLoop`` (see the module docstring)."""

    actor_inbox: LoopInbox

    def __init__(self, *args: Any, actor_loop: ActorLoop, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.actor_loop = actor_loop
        self._drain_scheduled = False
        self.actor_inbox.wake = self._wake
        self._actor_ref = LoopActorRef(self)  # (before ``start`` registers the ref)
        actor_loop.add(self)  # the loop stops its actors when it stops

    @staticmethod
    def _create_actor_inbox() -> LoopInbox:
        return LoopInbox()

    @staticmethod
    def _create_future() -> pykka.Future[Any]:
        return pykka.ThreadingFuture()

    def _start_actor_loop(self) -> None:
        self._drain_scheduled = True  # messages told before on_start wait for it
        self.actor_loop.call_soon(self._setup_and_drain)

    def _setup_and_drain(self) -> None:
        self._actor_loop_setup()
        self._drain()

    def _wake(self) -> None:
        if self._drain_scheduled:
            return  # a drain is due and will take this message in order
        loop = self.actor_loop
        if not loop.draining and loop.in_loop():
            # Told on the loop's thread (the feed) and nothing else is being handled: handle it now,
            # before the feed reads its next frame.
            self._drain()
            return
        self._drain_scheduled = True
        try:
            loop.call_soon(self._drain)
        except RuntimeError:  # the loop is closed: nothing will ever handle this message
            self._drain_scheduled = False
            raise pykka.ActorDeadError(f"{self}: its loop has stopped") from None

    def _receive_now(self, message: Any) -> bool:
        """On the loop's thread: handle a told message at once if nothing comes before it (else False).

        Nothing does when no actor of the loop is handling a message (no re-entrancy), no drain of
        this actor is due and its inbox is empty (no overtaking), and it is alive. Then this is a
        drain whose first message never went through the inbox; messages told while handling it
        queue up and are handled right after it, as ``_drain`` would.
        """
        loop = self.actor_loop
        if loop.draining or self._drain_scheduled or self.actor_inbox._q or self.actor_stopped.is_set():
            return False
        loop.draining = True
        try:
            self._receive(message, None)
            if self.actor_inbox._q or self.actor_stopped.is_set():
                self._drain_inbox()
        finally:
            loop.draining = False
        return True

    def _drain(self) -> None:
        # Cleared before reading the inbox: a put from now on schedules another drain, so none is lost.
        self._drain_scheduled = False
        loop = self.actor_loop
        nested, loop.draining = loop.draining, True
        try:
            self._drain_inbox()
        finally:
            loop.draining = nested

    def _drain_inbox(self) -> None:
        q = self.actor_inbox._q  # (LoopInbox's get and empty, inlined: once per message told)
        stopped = self.actor_stopped
        while q:
            if stopped.is_set():
                break
            envelope = q.popleft()
            self._receive(envelope.message, envelope.reply_to)
        if stopped.is_set():
            self._actor_loop_teardown()
        elif not q:
            # A message told while handling scheduled a drain that will find nothing: the next
            # tell on the loop's thread may be handled at once again (that drain still runs, so a
            # message another thread adds now is not stranded).
            self._drain_scheduled = False

    def _receive(self, message: Any, reply_to: pykka.Future[Any] | None) -> None:
        # pykka's ``_actor_loop_running`` for one message, on the loop's thread.
        try:
            response = self._handle_receive(message)
            if reply_to is not None:
                reply_to.set(response)
        except Exception:
            if reply_to is not None:
                reply_to.set_exception()
            else:
                self._handle_failure(*sys.exc_info())
                try:
                    self.on_failure(*sys.exc_info())
                except Exception:
                    self._handle_failure(*sys.exc_info())
        except BaseException:
            # As pykka does for a thread actor, stop everything: here, every actor of this loop
            # (asking them, as pykka's stop_all would, would wait for this very thread).
            log.exception("%s: stopping every actor of its loop", self)
            self.actor_loop.stop_actors()
            raise


class LoopActorRef(pykka.ActorRef[Any]):
    """A ``LoopActor``'s ref: a tell on the loop's thread goes straight in when it can (module docstring)."""

    def tell(self, message: Any) -> None:
        """Tell the actor: handled before returning if told on its loop's thread and nothing is before it."""
        actor: LoopActor | None = self._actor_weakref()
        if (
            actor is None
            or threading.get_ident() != actor.actor_loop._ident
            or not actor._receive_now(message)
        ):
            super().tell(message)  # pykka's way: an envelope in the inbox, a drain scheduled

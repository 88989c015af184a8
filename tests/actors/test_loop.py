"""Actors on one event-loop thread: pykka's tell/ask/stop/failure semantics, without a thread each."""

import threading

import pykka
import pytest

from actors.loop import ActorLoop, InputClock, LoopActor
from tests.actors.conftest import on_loop


class Recorder(LoopActor):
    """Records (message, thread) and tells ``forward`` (itself, by default) what it is asked to."""

    def __init__(self, *, actor_loop, started=None, got=None):
        super().__init__(actor_loop=actor_loop)
        self.got = got if got is not None else []
        self.started = started

    def on_start(self):
        if self.started is not None:
            self.started.append(threading.get_ident())

    def on_receive(self, message):
        if message == "get":
            return list(self.got)
        if message == "boom":
            raise ValueError("boom")
        if isinstance(message, tuple) and message[0] == "tell-self":
            self.actor_ref.tell(message[1])
        self.got.append((message, threading.get_ident()))
        return len(self.got)


def test_messages_from_other_threads_are_handled_on_the_loop_in_order(loop):
    started = []
    ref = Recorder.start(actor_loop=loop, started=started)
    loop_thread = on_loop(loop, threading.get_ident)

    senders = [threading.Thread(target=lambda k=k: [ref.tell((k, i)) for i in range(200)]) for k in range(3)]
    for t in senders:
        t.start()
    for t in senders:
        t.join()
    got = ref.ask("get", timeout=5)

    assert started == [loop_thread]
    assert {thread for _, thread in got} == {loop_thread}
    for k in range(3):  # each sender's messages in the order it sent them
        assert [m[1] for m, _ in got if m[0] == k] == list(range(200))
    ref.stop()


def test_a_tell_on_the_loop_thread_is_handled_before_it_returns_and_nested_tells_keep_order(loop):
    got = []
    ref = Recorder.start(actor_loop=loop, got=got)
    ref.ask("get", timeout=5)  # started

    def tell_and_look():
        ref.tell(("tell-self", "second"))  # handled at once; the message it tells itself waits its turn
        ref.tell("third")
        return [m for m, _ in got]  # on the loop's thread: nothing else runs meanwhile

    seen = on_loop(loop, tell_and_look)

    assert seen == [("tell-self", "second"), "second", "third"]
    ref.stop()


def test_two_actors_share_the_loop_and_asks_from_other_threads_get_answers(loop):
    a, b = Recorder.start(actor_loop=loop), Recorder.start(actor_loop=loop)

    assert a.ask("x", timeout=5) == 1 and b.ask("y", timeout=5) == 1 and a.ask("z", timeout=5) == 2
    a.stop()
    b.stop()


def test_a_failing_tell_stops_the_actor_calls_on_failure_and_fails_queued_asks(loop):
    failures = []

    class Failing(Recorder):
        def on_failure(self, exc_type, exc, tb):
            failures.append(repr(exc))

    ref = Failing.start(actor_loop=loop)
    ref.ask("get", timeout=5)
    hold = threading.Event()
    loop.call_soon(lambda: hold.wait(5))  # keep the loop busy so both messages queue up
    ref.tell("boom")
    pending = ref.ask("get", block=False)
    hold.set()

    with pytest.raises(pykka.ActorDeadError):
        pending.get(timeout=5)
    assert failures == ["ValueError('boom')"]
    assert not ref.is_alive()
    with pytest.raises(pykka.ActorDeadError):
        ref.tell("late")


def test_an_ask_that_fails_answers_with_the_exception_and_the_actor_lives_on(loop):
    ref = Recorder.start(actor_loop=loop)

    with pytest.raises(ValueError, match="boom"):
        ref.ask("boom", timeout=5)

    assert ref.is_alive() and ref.ask("ok", timeout=5) == 1
    ref.stop()


def test_stop_from_another_thread_answers_and_later_messages_are_refused(loop):
    ref = Recorder.start(actor_loop=loop)
    ref.tell("a")

    ref.stop(timeout=5)

    assert not ref.is_alive()
    with pytest.raises(pykka.ActorDeadError):
        ref.ask("get", timeout=1)


def test_stopping_the_loop_stops_its_actors_so_nothing_waits_on_a_dead_loop():
    loop = ActorLoop("test-loop")
    loop.start()
    stopped = []

    class Tracked(Recorder):
        def on_stop(self):
            stopped.append(threading.get_ident())

    ref = Tracked.start(actor_loop=loop)
    loop_thread = on_loop(loop, threading.get_ident)

    loop.stop()

    assert stopped == [loop_thread] and not ref.is_alive()
    with pytest.raises(pykka.ActorDeadError):
        ref.ask("get", timeout=1)


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")  # the exit, as intended
def test_a_base_exception_in_a_handler_stops_every_actor_of_the_loop(loop):
    class Exiting(Recorder):
        def on_receive(self, message):
            if message == "exit":
                raise SystemExit(3)
            return super().on_receive(message)

    a, b = Exiting.start(actor_loop=loop), Recorder.start(actor_loop=loop)
    b.ask("get", timeout=5)

    a.tell("exit")
    loop._thread.join(5)  # the exit ends the loop's thread, as it would end an actor's thread

    assert not loop._thread.is_alive()
    assert not a.is_alive() and not b.is_alive()
    with pytest.raises(pykka.ActorDeadError):
        b.tell("late")  # refused, never stranded in an inbox nobody drains


class StepClock:
    """A running clock that moves 1 us per read."""

    def __init__(self):
        self.t = 0

    def now_ns(self):
        self.t += 1_000
        return self.t


class Timed(LoopActor):
    """Reads its clock twice per message."""

    def __init__(self, clock, *, actor_loop):
        super().__init__(actor_loop=actor_loop)
        self.clock = clock
        self.read = []

    def on_receive(self, message):
        if message == "get":
            return list(self.read)
        self.read.append((message, self.clock.now_ns(), self.clock.now_ns()))
        return None


def test_an_input_clock_answers_one_time_per_input_to_every_actor_that_handles_it():
    clock = InputClock(StepClock())
    loop = ActorLoop("test-loop", clock=clock)
    loop.start()
    try:
        first, second = Timed.start(clock, actor_loop=loop), Timed.start(clock, actor_loop=loop)
        for name in ("a", "b"):  # one callback each, telling both actors (as a feed frame its markets)
            on_loop(loop, lambda name=name: [first.tell(name), second.tell(name)])
        first.tell("c")  # another thread's message: an input of its own
        read = first.ask("get") + second.ask("get")
        times = {name: {t for m, *ts in read if m == name for t in ts} for name in "abc"}
        assert all(len(ts) == 1 for ts in times.values())  # every reading within an input: one time
        assert len(set.union(*times.values())) == 3  # each input its own

        def nested():
            with clock as outer, clock as inner:  # an input, and a callback within it
                return outer, inner, clock.now_ns()

        outer, inner, now = on_loop(loop, nested)
        assert outer == inner == now
    finally:
        loop.stop()
    assert clock.now_ns() < clock.now_ns()  # outside any input: the running clock

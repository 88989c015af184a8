"""A tell on the loop's thread goes straight to the actor (``LoopActorRef``): in order, never re-entrant.

The direct path skips the envelope, the inbox and the scheduled drain when nothing comes before the
message; these tests hold it to the actor semantics the inbox gives: messages in the order told, one
at a time on the loop (an actor told while another handles waits), no overtaking of messages already
queued from other threads, failures that stop the actor (and a market actor that pulls its quotes and
is restarted), stop, and cross-thread tells as before.
"""

import threading
import time

import pykka
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from actors.loop import LoopActor, LoopActorRef, LoopInbox
from actors.market import GetStatus
from actors.supervisor import GetRestarts, Router, StartMarket, Supervisor
from core.messages import BookDelta
from core.units import Outcome, Side
from tests.actors.conftest import on_loop
from tests.actors.test_market_actor import T0, Factory, snapshot


class Probe(LoopActor):
    """Records what it handles; checks that no actor of its loop is handling anything meanwhile."""

    def __init__(self, *, actor_loop, shared, name, peers=None):
        super().__init__(actor_loop=actor_loop)
        self.shared = shared
        self.name = name
        self.peers = peers if peers is not None else {}
        self.sent: dict[str, int] = {}

    def on_receive(self, message):
        if message == "get":
            return [m for a, m in self.shared["got"] if a == self.name]
        shared = self.shared
        if shared["depth"]:
            shared["reentrant"].append((self.name, message))
        shared["depth"] += 1
        try:
            shared["got"].append((self.name, message))
            if message == "boom":
                raise ValueError("boom")
            if isinstance(message, tuple) and message[0] == "forward":
                for target in message[1]:
                    n = self.sent.get(target, 0)
                    self.sent[target] = n + 1
                    self.peers[target].tell(("from", self.name, n))
                if message[2:] == ("boom",):
                    raise ValueError("boom after forwarding")
        finally:
            shared["depth"] -= 1
        return None


def new_shared():
    return {"got": [], "depth": 0, "reentrant": []}


def test_a_loop_actor_ref_hands_a_tell_on_the_loop_straight_to_the_actor(loop, monkeypatch):
    shared = new_shared()
    ref = Probe.start(actor_loop=loop, shared=shared, name="a")
    ref.ask("get", timeout=5)  # started
    puts = []
    real_put = LoopInbox.put
    monkeypatch.setattr(LoopInbox, "put", lambda self, e: (puts.append(e.message), real_put(self, e)))

    seen = on_loop(loop, lambda: (ref.tell("x"), list(shared["got"]))[1])

    assert isinstance(ref, LoopActorRef)
    assert seen == [("a", "x")]  # handled before the tell returned
    assert puts == []  # without the inbox
    ref.tell("y")  # from another thread: pykka's way
    assert ref.ask("get", timeout=5) == ["x", "y"] and puts[0] == "y"
    ref.stop()


def test_an_actor_told_while_another_handles_waits_until_the_handler_returns(loop):
    shared = new_shared()
    peers: dict[str, pykka.ActorRef[Probe]] = {}
    a = Probe.start(actor_loop=loop, shared=shared, name="a", peers=peers)
    b = Probe.start(actor_loop=loop, shared=shared, name="b", peers=peers)
    peers.update(a=a, b=b)
    a.ask("get", timeout=5)
    b.ask("get", timeout=5)

    # a's handler tells b twice and itself once: all wait for a's handler to return, then in order.
    seen = on_loop(loop, lambda: (a.tell(("forward", ("b", "b", "a"))), list(shared["got"]))[1])

    assert seen == [("a", ("forward", ("b", "b", "a"))), ("a", ("from", "a", 0))]
    assert b.ask("get", timeout=5) == [("from", "a", 0), ("from", "a", 1)]
    assert shared["reentrant"] == []
    a.stop()
    b.stop()


def test_a_tell_on_the_loop_never_overtakes_messages_queued_from_other_threads(loop):
    shared = new_shared()
    ref = Probe.start(actor_loop=loop, shared=shared, name="a")
    ref.ask("get", timeout=5)
    queued, told = threading.Event(), threading.Event()

    def on_the_loop():
        assert queued.wait(5)  # "first" waits in the inbox, its drain scheduled behind this callback
        ref.tell("second")
        told.set()

    loop.call_soon(on_the_loop)
    ref.tell("first")
    queued.set()
    assert told.wait(5)

    assert ref.ask("get", timeout=5) == ["first", "second"]
    ref.stop()


def test_a_failure_on_the_direct_path_stops_the_actor_and_fails_what_waits(loop):
    failures = []

    class Failing(Probe):
        def on_failure(self, exc_type, exc, tb):
            failures.append((repr(exc), [e.message for e in self.actor_inbox._q]))

    shared = new_shared()
    peers: dict[str, pykka.ActorRef[Probe]] = {}
    ref = Failing.start(actor_loop=loop, shared=shared, name="a", peers=peers)
    peers["a"] = ref
    ref.ask("get", timeout=5)

    def tell_boom():
        ref.tell(("forward", ("a",)))  # handled at once; what it tells itself is handled right after
        ref.tell(("forward", ("a", "a"), "boom"))  # handled at once too, and fails with two told
        return ref.is_alive()

    assert on_loop(loop, tell_boom) is False
    assert [m for _, m in shared["got"]] == [
        ("forward", ("a",)),
        ("from", "a", 0),
        ("forward", ("a", "a"), "boom"),
    ]
    # on_failure saw what the failing handler told (a market actor hands it to its supervisor).
    assert failures == [("ValueError('boom after forwarding')", [("from", "a", 1), ("from", "a", 2)])]

    def tell_late():
        with pytest.raises(pykka.ActorDeadError):
            ref.tell("late on the loop")
        return True

    assert on_loop(loop, tell_late)
    with pytest.raises(pykka.ActorDeadError):
        ref.tell("late")


def test_a_market_actor_failing_on_a_tell_from_the_loop_pulls_its_quotes_and_is_restarted(loop):
    factory, router = Factory(), Router()
    restarted = threading.Event()

    def schedule(delay, fn):
        fn()
        restarted.set()

    sup = Supervisor.start(factory, router, backoff_s=0.0, schedule=schedule, actor_loop=loop)
    first = sup.ask(StartMarket("a"), timeout=2)
    on_loop(loop, lambda: router.tell("a", snapshot("a")))
    assert first.ask(GetStatus(), timeout=2).last_quote

    bad = BookDelta(market="a", outcome=Outcome.YES, ts_ns=T0 + 1, side=Side.BUY, px=20_000, qty=1)
    on_loop(loop, lambda: router.tell("a", bad))  # the feed's way: straight in, and it crashes

    assert restarted.wait(5)
    assert sup.ask(GetRestarts(), timeout=2) == {"a": 1}
    assert not first.is_alive() and factory.ports["a"].cancel_all_calls == ["a"]
    new = router.get("a")
    assert new is not None and new != first
    on_loop(loop, lambda: router.tell("a", snapshot("a", ts=T0 + 2)))
    assert new.ask(GetStatus(), timeout=2).last_quote
    sup.stop()


def test_stop_then_a_tell_on_the_loop_is_refused(loop):
    ref = Probe.start(actor_loop=loop, shared=new_shared(), name="a")
    on_loop(loop, lambda: ref.tell("x"))
    ref.stop(timeout=5)

    def tell():
        with pytest.raises(pykka.ActorDeadError):
            ref.tell("y")
        return True

    assert on_loop(loop, tell)


ACTORS = ("a", "b", "c")
_op = st.tuples(
    st.sampled_from(("loop", "thread")),
    st.sampled_from(ACTORS),
    st.lists(st.sampled_from(ACTORS), max_size=3).map(tuple),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=st.lists(_op, min_size=1, max_size=30), batch=st.integers(1, 5))
def test_any_mix_of_loop_and_thread_tells_is_handled_once_in_order_never_reentrantly(loop, ops, batch):
    shared = new_shared()
    peers: dict[str, pykka.ActorRef[Probe]] = {}
    for name in ACTORS:
        peers[name] = Probe.start(actor_loop=loop, shared=shared, name=name, peers=peers)
    for ref in peers.values():
        ref.ask("get", timeout=5)
    # Loop tells go in callbacks of up to ``batch`` tells each (back to back, as a frame's markets);
    # thread tells go from this thread meanwhile.
    pending: list[tuple[str, tuple[object, ...]]] = []
    counter = {"loop": 0, "thread": 0}

    def flush_loop_batch():
        if pending:
            todo = list(pending)
            pending.clear()
            loop.call_soon(lambda: [peers[t].tell(m) for t, m in todo])

    for source, target, forwards in ops:
        message = ("forward", forwards, source, counter[source])
        counter[source] += 1
        if source == "loop":
            pending.append((target, message))
            if len(pending) >= batch:
                flush_loop_batch()
        else:
            peers[target].tell(message)
    flush_loop_batch()

    expected = len(ops) + sum(len(f) for _, _, f in ops)
    deadline = time.monotonic() + 10
    while len(shared["got"]) < expected and time.monotonic() < deadline:
        time.sleep(0.002)
    on_loop(loop, lambda: None)
    got = list(shared["got"])
    for ref in peers.values():
        ref.stop()

    assert len(got) == expected and shared["reentrant"] == []
    for name in ACTORS:
        mine = [m for a, m in got if a == name]
        for source in ("loop", "thread"):  # each source's messages to this actor in the order told
            seq = [m[3] for m in mine if m[0] == "forward" and m[2] == source]
            assert seq == sorted(seq)
        for sender in ACTORS:  # and each actor's forwards to it
            seq = [m[2] for m in mine if m[0] == "from" and m[1] == sender]
            assert seq == list(range(len(seq)))

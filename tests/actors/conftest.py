"""What the loop actors' tests share: a started ``ActorLoop`` and running a function on its thread."""

import threading

import pytest

from actors.loop import ActorLoop


@pytest.fixture
def loop():
    lp = ActorLoop("test-loop")
    lp.start()
    yield lp
    lp.stop()


def on_loop(loop, fn):
    """Run ``fn`` on the loop's thread and return its result (None if it raised)."""
    done, out = threading.Event(), []

    def run():
        try:
            out.append(fn())
        finally:
            done.set()

    loop.call_soon(run)
    assert done.wait(5)
    return out[0] if out else None

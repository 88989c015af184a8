"""A stand-in for the venue's market channel on 127.0.0.1, for tests that drive a feed frame by frame."""

from __future__ import annotations

import contextlib
import queue
import threading

from websockets.sync.server import ServerConnection, serve


class MarketChannelServer:
    """The market channel on 127.0.0.1: sends each frame it is given, answers PINGs.

    ``frames.put(text)`` sends a frame to the one subscriber (``subscribed`` is set once it has
    subscribed); ``close`` ends the connection and the server.
    """

    def __init__(self) -> None:
        self.frames: queue.SimpleQueue[str | None] = queue.SimpleQueue()
        self.subscribed = threading.Event()
        self._server = serve(self._handler, "127.0.0.1", 0, compression=None)
        self.url = f"ws://127.0.0.1:{self._server.socket.getsockname()[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def _handler(self, ws: ServerConnection) -> None:
        ws.recv()  # the subscription
        self.subscribed.set()
        threading.Thread(target=self._pongs, args=(ws,), daemon=True).start()
        while (frame := self.frames.get()) is not None:
            ws.send(frame)
        ws.close()

    @staticmethod
    def _pongs(ws: ServerConnection) -> None:
        with contextlib.suppress(Exception):
            for msg in ws:
                if msg == "PING":
                    ws.send("PONG")

    def close(self) -> None:
        self.frames.put(None)
        self._server.shutdown()

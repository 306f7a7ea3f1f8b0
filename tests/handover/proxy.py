"""A TCP relay that can swallow the server's answer: the request reaches the receiver (which
stores the package) but the client's connection is cut before it reads a byte of the reply."""

from __future__ import annotations

import select
import socket
import threading
from collections.abc import Callable


class LossyProxy:
    def __init__(self, upstream_port: int, drop_when: Callable[[], bool], drop_answers: int = 1) -> None:
        self.upstream_port = upstream_port
        self.drop_when = drop_when  # true once the receiver has stored the package
        self.drop_answers = drop_answers
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(16)
        self.port: int = self.listener.getsockname()[1]
        self.dropped = 0
        self._stop = threading.Event()
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._relay, args=(client,), daemon=True).start()

    def _relay(self, client: socket.socket) -> None:
        upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
        try:
            while not self._stop.is_set():
                readable, _, _ = select.select([client, upstream], [], [], 0.5)
                for sock in readable:
                    data = sock.recv(65536)
                    if not data:
                        return
                    if sock is client:
                        upstream.sendall(data)
                        continue
                    # Bytes from the server: handshake and session tickets pass; once the
                    # receiver has stored the package, the bytes are its answer.
                    if self.drop_when() and self._take_drop():
                        return  # cut the client off: the answer is lost
                    client.sendall(data)
        except OSError:
            return
        finally:
            client.close()
            upstream.close()

    def _take_drop(self) -> bool:
        with self._lock:
            if self.dropped < self.drop_answers:
                self.dropped += 1
                return True
            return False

    def close(self) -> None:
        self._stop.set()
        self.listener.close()

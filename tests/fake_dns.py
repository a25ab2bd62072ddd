"""A DNS server inside the test process, answering SRV questions from a table.

It listens on UDP ``127.0.0.1`` on a free port and builds its answers with
dnspython, so the client's real resolver code is exercised end to end.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Mapping, Sequence

import dns.message
import dns.rcode
import dns.resolver
import dns.rrset

#: ``(priority, weight, port, target)`` of one SRV record.
SrvRecord = tuple[int, int, int, str]


class FakeDns:
    """Answer SRV questions for the names in *records*; every other name is NXDOMAIN.

    :param records: SRV records by owner name, e.g.
        ``{"_etcd-client._tcp.example.test.": [(10, 0, 2379, "127.0.0.1.")]}``.
    """

    def __init__(self, records: Mapping[str, Sequence[SrvRecord]]) -> None:
        self.records = {name.lower().rstrip(".") + ".": list(r) for name, r in records.items()}
        self.questions: list[str] = []
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.settimeout(0.1)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    @property
    def port(self) -> int:
        """The UDP port the server answers on."""
        port: int = self._sock.getsockname()[1]
        return port

    def resolver(self) -> dns.resolver.Resolver:
        """A resolver that asks this server and nothing else."""
        resolver = dns.resolver.Resolver(configure=False)
        resolver.nameservers = ["127.0.0.1"]
        resolver.port = self.port
        resolver.lifetime = 2.0
        return resolver

    def __enter__(self) -> FakeDns:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self._sock.close()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                data, peer = self._sock.recvfrom(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            query = dns.message.from_wire(data)
            response = dns.message.make_response(query)
            question = query.question[0]
            name = question.name.to_text().lower()
            self.questions.append(name)
            records = self.records.get(name)
            if records is None:
                response.set_rcode(dns.rcode.NXDOMAIN)
            else:
                texts = [f"{p} {w} {port} {target}" for p, w, port, target in records]
                response.answer.append(dns.rrset.from_text(question.name, 60, "IN", "SRV", *texts))
            self._sock.sendto(response.to_wire(), peer)

"""A fast SMTP sink on 127.0.0.1, in a process of its own, that only counts.

It accepts every message and counts them and their Message-IDs (to show
nothing was sent twice). It runs in its own process so it never competes
for the GIL with the code being measured, and answers the benchmark's
questions over a pipe on the same event loop as the SMTP sessions.

    with Sink() as sink:
        ...  # send to sink.host:sink.port
        sink.wait_for(10_000, timeout=120)
        sink.stats()  # {"accepted": 10000, "message_ids": 10000, "duplicates": 0}

Never imports Django: the process is spawned, not forked.
"""

import asyncio
import logging
import multiprocessing
import re
import time
from dataclasses import dataclass, field

HOST = "127.0.0.1"
MESSAGE_ID = re.compile(rb"^Message-ID:[ \t]*(\S+)", re.IGNORECASE | re.MULTILINE)


@dataclass
class _Counter:
    """The aiosmtpd handler: accept, count, remember each Message-ID."""

    accepted: int = 0
    duplicates: int = 0
    ids: set[bytes] = field(default_factory=set)

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's name)
        content = envelope.original_content
        found = MESSAGE_ID.search(content, 0, content.find(b"\r\n\r\n"))
        if found:
            message_id = found.group(1)
            if message_id in self.ids:
                self.duplicates += 1
            else:
                self.ids.add(message_id)
        self.accepted += 1
        return "250 2.0.0 Ok: queued"

    def stats(self) -> dict:
        return {
            "accepted": self.accepted,
            "message_ids": len(self.ids),
            "duplicates": self.duplicates,
        }

    def reset(self) -> None:
        self.accepted = self.duplicates = 0
        self.ids.clear()


def _fast_smtp():
    """aiosmtpd's SMTP with a sink's shortcuts where it spends its time per message.

    Stock aiosmtpd reads DATA one line at a time and parses each address with
    the email package's header parser: several times the cost of sending
    the message. The sink takes the message in one read up to the final
    dot and takes addresses as written.
    """
    from aiosmtpd.smtp import SMTP, syntax

    class FastSMTP(SMTP):
        # The stream's buffer limit: a whole message fits, so one readuntil() takes it.
        line_length_limit = 1 << 24

        def _getaddr(self, arg: str):
            arg = arg.strip()
            if arg.startswith("<"):
                address, _, rest = arg[1:].partition(">")
                return address, rest.strip()
            address, _, rest = arg.partition(" ")
            return address, rest

        @syntax("DATA")
        async def smtp_DATA(self, arg: str) -> None:  # noqa: N802 (aiosmtpd's name)
            if not self.envelope.rcpt_tos:
                await self.push("503 Error: need RCPT command")
                return
            await self.push("354 End data with <CR><LF>.<CR><LF>")
            data = await self._reader.readuntil(b"\r\n.\r\n")
            # Undo dot-stuffing (RFC 5321 4.5.2); keep the last line's CRLF.
            content = (b"\r\n" + data[:-3]).replace(b"\r\n..", b"\r\n.")[2:]
            self.envelope.content = self.envelope.original_content = content
            status = await self._call_handler_hook("DATA")
            self._set_post_data_state()
            await self.push(status)

    return FastSMTP


def _serve(pipe) -> None:
    logging.getLogger("mail.log").setLevel(logging.WARNING)
    smtp = _fast_smtp()
    loop = asyncio.new_event_loop()
    counter = _Counter()
    server = loop.run_until_complete(
        loop.create_server(
            lambda: smtp(counter, hostname="sink.bench", loop=loop), HOST, 0, backlog=128
        )
    )
    pipe.send(server.sockets[0].getsockname()[1])

    def answer() -> None:
        command = pipe.recv()
        if command == "count":
            pipe.send(counter.accepted)
        elif command == "stats":
            pipe.send(counter.stats())
        elif command == "reset":
            counter.reset()
            pipe.send(True)
        else:  # "stop"
            pipe.send(True)
            loop.stop()

    loop.add_reader(pipe.fileno(), answer)
    loop.run_forever()
    server.close()


class Sink:
    """The sink process, started on entering and stopped on leaving."""

    host = HOST

    def __enter__(self) -> "Sink":
        context = multiprocessing.get_context("spawn")
        self._pipe, theirs = context.Pipe()
        self._process = context.Process(target=_serve, args=(theirs,), daemon=True)
        self._process.start()
        if not self._pipe.poll(30):
            raise RuntimeError("The SMTP sink did not start within 30 seconds.")
        self.port = self._pipe.recv()
        self.pid = self._process.pid
        return self

    def __exit__(self, *exc) -> None:
        try:
            self._ask("stop")
        finally:
            self._process.join(5)
            if self._process.is_alive():
                self._process.kill()

    def _ask(self, command: str):
        self._pipe.send(command)
        return self._pipe.recv()

    def count(self) -> int:
        return self._ask("count")

    def stats(self) -> dict:
        return self._ask("stats")

    def reset(self) -> None:
        self._ask("reset")

    def wait_for(self, count: int, *, timeout: float, every: float = 0.005) -> float:
        """Wait until `count` messages were accepted since the last reset; when (monotonic)."""
        deadline = time.monotonic() + timeout
        while (accepted := self.count()) < count:
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"The sink accepted {accepted} of {count} messages in {timeout:.0f} s."
                )
            time.sleep(every)
        return time.monotonic()

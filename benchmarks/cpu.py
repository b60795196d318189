"""CPU time spent by processes between two moments: where a run's time went (Linux /proc)."""

import os
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pids: list[int]) -> float:
    """User and system CPU seconds the processes have used so far."""
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / TICKS


class CpuMeter:
    """CPU the sender's processes (the engine's, a client's) and the sink use from now on."""

    def __init__(self, sender_pids: list[int], sink):
        self.pids = {"sender": sender_pids, "sink": [sink.pid]}
        self.start = {name: cpu_seconds(pids) for name, pids in self.pids.items()}

    def per_message_ms(self, messages: int) -> dict:
        return {
            f"{name}_cpu_ms_per_message": round(
                (cpu_seconds(pids) - self.start[name]) * 1000 / messages, 3
            )
            for name, pids in self.pids.items()
        }

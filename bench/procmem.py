"""Memory of another process while something runs: VmRSS sampled in a thread, plus VmHWM."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

MIB = 1024 * 1024
SAMPLE_EVERY = 0.005  # seconds


def read_status_kib(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (peak RSS since start) of ``pid`` from /proc, in KiB."""
    values: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        field, _, rest = line.partition(":")
        if field in ("VmRSS", "VmHWM"):
            values[field] = int(rest.split()[0])
    return values


@dataclass(frozen=True)
class MemoryGrowth:
    rss_before: int  # bytes
    rss_peak_sampled: int
    hwm_before: int
    hwm_after: int

    @property
    def sampled_growth(self) -> int:
        return self.rss_peak_sampled - self.rss_before

    @property
    def hwm_growth(self) -> int:
        """The kernel-recorded peak above the RSS before, if the peak rose during the run
        (catches spikes between samples); 0 if it did not rise (the sampled figure applies)."""
        if self.hwm_after <= self.hwm_before:
            return 0
        return self.hwm_after - self.rss_before

    @property
    def growth(self) -> int:
        return max(self.sampled_growth, self.hwm_growth)


class RssSampler:
    """``with RssSampler(pid) as sampler: ...`` then ``sampler.result``."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self._stop = threading.Event()
        self._peak = 0
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._before: dict[str, int] = {}
        self.result: MemoryGrowth | None = None

    def _run(self) -> None:
        while not self._stop.is_set():
            self._peak = max(self._peak, read_status_kib(self.pid)["VmRSS"])
            self._stop.wait(SAMPLE_EVERY)

    def __enter__(self) -> RssSampler:
        self._before = read_status_kib(self.pid)
        self._peak = self._before["VmRSS"]
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        after = read_status_kib(self.pid)
        self._peak = max(self._peak, after["VmRSS"])
        self.result = MemoryGrowth(
            rss_before=self._before["VmRSS"] * 1024,
            rss_peak_sampled=self._peak * 1024,
            hwm_before=self._before["VmHWM"] * 1024,
            hwm_after=after["VmHWM"] * 1024,
        )

"""Progress of long runs: a tqdm bar on a terminal, a few plain lines in a log.

A log (CI, ``make demo > log``) gets one line per tenth of the work or per minute, whichever
comes first, instead of hundreds of carriage-return frames.
"""

from __future__ import annotations

import sys
import time

from tqdm import tqdm


class Progress:
    def __init__(self, total: int, desc: str, unit: str, initial: int = 0, stream=None):
        self.stream = stream or sys.stderr
        self.total, self.done, self.desc, self.unit = total, initial, desc, unit
        self.t0 = self.last = time.monotonic()
        self.start = initial
        self.postfix = ""
        self.bar = None
        if self.stream.isatty():
            self.bar = tqdm(total=total, initial=initial, desc=desc, unit=unit, file=self.stream, dynamic_ncols=True)
        else:
            self._line()

    def update(self, n: int = 1, postfix: str = "") -> None:
        self.done += n
        self.postfix = postfix
        if self.bar is not None:
            self.bar.set_postfix_str(postfix, refresh=False)
            self.bar.update(n)
            return
        now = time.monotonic()
        step = max(1, self.total // 10)
        tenth = (self.done - self.start) // step > (self.done - n - self.start) // step  # crossed a tenth
        if self.done >= self.total or tenth or now - self.last > 60:
            self._line()
            self.last = now

    def _line(self) -> None:
        rate_n = self.done - self.start
        eta = ""
        if 0 < rate_n < self.total - self.start:
            left = (time.monotonic() - self.t0) / rate_n * (self.total - self.done)
            eta = f", about {left / 60:.1f} min left" if left >= 60 else f", about {left:.0f} s left"
        extra = f", {self.postfix}" if self.postfix else ""
        print(f"{self.desc}: {self.done}/{self.total} {self.unit}{extra}{eta}", file=self.stream, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()

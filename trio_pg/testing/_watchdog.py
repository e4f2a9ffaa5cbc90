"""Cleanup process for a PostgresServer whose owner dies without calling ``stop()``.

``atexit`` does not run when the owning process is killed (SIGKILL, or SIGTERM from a CI
timeout), which would leave a postmaster running and its directory behind. So each
server gets this small process, started as a script (``python -I -S _watchdog.py ROOT``,
importing nothing of trio_pg). Its stdin is a pipe whose write end only the owner holds:

- the owner's ``stop()`` writes one byte, meaning "done, stand down";
- end-of-file without that byte means the owner died: stop the postmaster named in
  ``ROOT/data/postmaster.pid`` (fast shutdown, then SIGKILL after a grace period) and
  delete ``ROOT``.
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
import time

_GRACE_SECONDS = 60.0
_POLL_SECONDS = 0.1


def main(root: str) -> None:
    """Wait for the owner to stand down or die; clean up after a dead owner."""
    if sys.stdin.buffer.read(1):
        return
    try:
        with open(os.path.join(root, "data", "postmaster.pid"), encoding="utf-8") as pid_file:
            pid = int(pid_file.readline())
        os.kill(pid, signal.SIGINT)  # fast shutdown (server-shutdown.html)
        deadline = time.monotonic() + _GRACE_SECONDS
        while time.monotonic() < deadline:
            os.kill(pid, 0)  # raises ProcessLookupError once the postmaster is gone
            time.sleep(_POLL_SECONDS)
        os.kill(pid, signal.SIGKILL)
    except (OSError, ValueError):
        pass  # no postmaster (yet, or any more): only the directory is left
    shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main(sys.argv[1])

"""What a bare run (no sandbox) could leave for a later run outside the filesystem watch, snapshotted
before and after each seed by harness.integrity: /dev/shm and /dev/mqueue entries and SysV IPC objects.

Under bubblewrap each run has its own /dev/shm and IPC namespace, so there is nothing to watch. Bare,
a change here is flagged, whoever made it: an object added (weights left behind), removed or
changed, or read where the kernel records it: a /dev/shm file's access time (tmpfs moves it on the
first read after a write), a SysV segment's attach time and count, a queue's receive time.
POSIX queues are listed only where /dev/mqueue is mounted; harness.seccomp refuses them anyway.
"""

from __future__ import annotations

import os
from pathlib import Path

SHARED_DIRS = ("/dev/shm", "/dev/mqueue")
SYSV_KINDS = ("shm", "msg", "sem")
_VOLATILE = {"rss", "swap"}          # a segment's resident pages move with memory pressure, not with use

Snapshot = dict[str, tuple]


def snapshot() -> Snapshot:
    """Every entry under SHARED_DIRS with (ctime, size, atime), and every SysV object's /proc/sysvipc row."""
    out: Snapshot = {}
    for top in SHARED_DIRS:
        for folder, dirs, files in os.walk(top):
            for name in dirs + files:
                path = os.path.join(folder, name)
                try:
                    st = os.lstat(path)
                except OSError:
                    continue
                out[path] = (st.st_ctime_ns, st.st_size, st.st_atime_ns)
    for kind in SYSV_KINDS:
        try:
            head, *rows = Path(f"/proc/sysvipc/{kind}").read_text().splitlines()
        except (OSError, ValueError):
            continue
        names = head.split()
        for row in rows:
            fields = dict(zip(names, row.split()))
            ident = f"SysV {kind} key {int(fields['key']):#x} id {row.split()[1]}"
            out[ident] = tuple(v for k, v in fields.items() if k not in _VOLATILE)
    return out


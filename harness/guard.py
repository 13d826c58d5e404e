"""Inside the training worker: train.py may write only its own seed folder and read no other run.

An audit hook (PEP 578; once added it cannot be removed) turns those mistakes into a clear
PermissionError at the moment they happen, sandbox or not:
- reading another run's folder (warm-starting from an earlier policy is borrowed compute);
- writing into the repository, results.tsv, the virtual environment or Python's own library.
It sees what Python itself opens, lists or globs in this process. A file opened from C++ (as
torch.export.load does) or by a subprocess is stopped by the sandbox (harness.sandbox) where there
is one, and otherwise caught afterwards by the file watch and the policy fingerprint (harness.integrity).
"""

from __future__ import annotations

import os
import sys
import sysconfig
from pathlib import Path

_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_TRUNC
_PATH_EVENTS = {  # event -> how many leading arguments are paths that get changed
    "os.remove": 1, "os.rmdir": 1, "os.rename": 2, "os.link": 2, "os.symlink": 2, "os.truncate": 1,
    "os.chmod": 1, "os.chown": 1, "os.utime": 1, "os.mkdir": 1, "shutil.rmtree": 1, "shutil.move": 2,
    "shutil.copyfile": 2,
}


def _protected_roots(root: Path) -> list[Path]:
    paths = {root, Path(sys.prefix), Path(sys.base_prefix)}
    paths.update(Path(p) for p in (sysconfig.get_paths().get(k) for k in ("stdlib", "platstdlib", "purelib")) if p)
    return [p.resolve() for p in paths]


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def install(root: Path, seed_dir: Path, train_file: Path) -> None:
    root, seed_dir, train_file = Path(root).resolve(), Path(seed_dir).resolve(), Path(train_file).resolve()
    runs = root / "runs"
    protected = _protected_roots(root)

    def resolve(p) -> Path | None:
        if isinstance(p, int) or p is None:
            return None
        try:
            return Path(os.path.abspath(os.fsdecode(p)))
        except (TypeError, ValueError):
            return None

    def check_write(path: Path | None) -> None:
        if path is None or _inside(path, seed_dir):
            return
        if any(_inside(path, p) for p in protected):
            raise PermissionError(f"train.py may write only its seed folder {seed_dir}, not {path}: "
                                  "the repository, results.tsv and the Python environment belong to the harness")

    def check_read(path: Path | None) -> None:
        if path is None or not _inside(path, runs) or path == runs:
            return
        if _inside(path, seed_dir) or path == train_file:
            return
        raise PermissionError(f"train.py may not read {path}: earlier runs' folders are off limits "
                              "(starting from an earlier policy is borrowed compute; train from scratch)")

    def hook(event: str, args: tuple) -> None:
        if event == "open":
            path, mode, flags = (tuple(args) + (None, None))[:3]
            path = resolve(path)
            check_read(path)
            writing = (isinstance(mode, str) and any(c in mode for c in "wax+")) or \
                      (isinstance(flags, int) and flags > 0 and flags & _WRITE_FLAGS)
            if writing:
                check_write(path)
        elif event in ("os.listdir", "os.scandir", "glob.glob", "glob.glob/2"):
            check_read(resolve(args[0] if args else None))
        elif event in _PATH_EVENTS:
            for p in args[:_PATH_EVENTS[event]]:
                check_write(resolve(p))

    sys.addaudithook(hook)

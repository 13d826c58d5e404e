"""A seccomp filter, installed by the worker before train.py is imported, that refuses the kernel
keyring and POSIX message queues to it and every process it starts.

Neither is a file nor in a namespace bubblewrap can make private: the user keyring is the same in
every run of this user (Docker and Flatpak refuse it to their containers for the same reason), and
without a mounted /dev/mqueue a queue cannot even be listed, so no check could see one. Training
has no use for either. The filter cannot be removed; it refuses with EPERM.
"""

from __future__ import annotations

import ctypes
import errno
import platform
import struct

# machine -> (AUDIT_ARCH_*, syscall numbers of add_key, request_key, keyctl, mq_open)
_ARCH = {"x86_64": (0xC000003E, (248, 249, 250, 240)), "aarch64": (0xC00000B7, (217, 218, 219, 180))}
_X32_BIT = 0x40000000          # x86_64's x32 ABI: the same numbers with this bit set
_RET_ALLOW, _RET_ERRNO = 0x7FFF0000, 0x00050000
_LD_W_ABS, _ALU_AND_K, _JEQ_K, _RET_K = 0x20, 0x54, 0x15, 0x06
_PR_SET_NO_NEW_PRIVS, _PR_SET_SECCOMP, _SECCOMP_MODE_FILTER = 38, 22, 2


def _program(arch: int, refused: tuple[int, ...]) -> bytes:
    """Classic BPF: another ABI (32-bit x86) is refused whole; of this one (x32 too), the `refused` calls."""
    deny = _RET_ERRNO | errno.EPERM
    n = len(refused)
    ops = [(_LD_W_ABS, 0, 0, 4),                       # seccomp_data.arch
           (_JEQ_K, 1, 0, arch),
           (_RET_K, 0, 0, deny),
           (_LD_W_ABS, 0, 0, 0),                       # seccomp_data.nr
           (_ALU_AND_K, 0, 0, ~_X32_BIT & 0xFFFFFFFF)]
    ops += [(_JEQ_K, n - i, 0, nr) for i, nr in enumerate(refused)]   # to the last op: deny
    ops += [(_RET_K, 0, 0, _RET_ALLOW), (_RET_K, 0, 0, deny)]
    return b"".join(struct.pack("HBBI", *op) for op in ops)


def refuse_keyring_and_mqueue() -> str | None:
    """Install the filter on this (still single-threaded) process; None, or why it could not."""
    arch = _ARCH.get(platform.machine())
    if arch is None:
        return f"no seccomp filter for {platform.machine()}"
    code = _program(*arch)
    buf = ctypes.create_string_buffer(code, len(code))

    class _Prog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

    prog = _Prog(len(code) // 8, ctypes.addressof(buf))
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 or \
            libc.prctl(_PR_SET_SECCOMP, _SECCOMP_MODE_FILTER, ctypes.byref(prog), 0, 0) != 0:
        return f"seccomp filter refused: {errno.errorcode.get(ctypes.get_errno(), '?')}"
    return None

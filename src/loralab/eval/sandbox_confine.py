"""Kernel-enforced confinement of one sandbox process (Linux), applied before untrusted code runs.

Like :mod:`.sandbox_guard`, this file is not imported by loralab: its source is copied into the
sandbox runner and runs in the child processes right after ``fork``. Unlike the guard, what it sets
up cannot be undone from Python, because the kernel holds it:

* **Landlock** (Linux ≥ 5.13): creating, writing, truncating, renaming, linking or removing files is
  allowed only beneath the sandbox folder (and writing ``/dev/null``). Reading is not restricted.
* **seccomp** (x86-64, aarch64): the system calls that reach outside the process fail with EPERM:
  sockets, new processes (``fork``/``vfork``/``clone`` without ``CLONE_THREAD``, ``execve``),
  signals to other processes (``kill``, ``tkill``, ``tgkill``, pidfd), ``ptrace`` and
  ``process_vm_*``, ``setsid``/``setpgid``, namespaces and mounts, ``io_uring``, ``bpf``, keyrings.
  Threads still work.
* **no capabilities, not dumpable, no new privileges**: another process of the same user (the
  solution) cannot read or write this one's memory through ``/proc/PID/mem`` or ``ptrace``.

:func:`confine` applies every layer that the kernel offers and returns their names;
:func:`available_layers` says which ones this kernel offers without applying anything.
"""

import ctypes
import os
import platform
import struct

PR_SET_DUMPABLE, PR_SET_SECCOMP, PR_SET_NO_NEW_PRIVS, PR_GET_SECCOMP = 4, 22, 38, 21
SECCOMP_MODE_FILTER = 2
SECCOMP_RET_ALLOW, SECCOMP_RET_ERRNO = 0x7FFF0000, 0x00050000
EPERM, ENOSYS = 1, 38
CLONE_THREAD = 0x00010000
AUDIT_ARCH = {"x86_64": 0xC000003E, "aarch64": 0xC00000B7}

# name → (x86-64 number, aarch64 number); None where the architecture has no such call
DENIED_SYSCALLS = {
    "socket": (41, 198), "socketpair": (53, 199), "fork": (57, None), "vfork": (58, None),
    "execve": (59, 221), "execveat": (322, 281), "kill": (62, 129), "tkill": (200, 130), "tgkill": (234, 131),
    "pidfd_send_signal": (424, 424), "pidfd_open": (434, 434), "pidfd_getfd": (438, 438),
    "ptrace": (101, 117), "process_vm_readv": (310, 270), "process_vm_writev": (311, 271),
    "setsid": (112, 157), "setpgid": (109, 154), "unshare": (272, 97), "setns": (308, 268),
    "mount": (165, 40), "umount2": (166, 39), "pivot_root": (155, 41), "chroot": (161, 51),
    "io_uring_setup": (425, 425), "io_uring_enter": (426, 426), "io_uring_register": (427, 427),
    "bpf": (321, 280), "perf_event_open": (298, 241), "userfaultfd": (323, 282),
    "keyctl": (250, 219), "add_key": (248, 217), "request_key": (249, 218),
    "open_by_handle_at": (304, 265), "name_to_handle_at": (303, 264),
}  # fmt: skip
CLONE, CLONE3 = (56, 220), (435, 435)

# Landlock: syscalls 444-446 on every architecture; access rights by ABI version
LANDLOCK_CREATE, LANDLOCK_ADD_RULE, LANDLOCK_RESTRICT = 444, 445, 446
WRITE_FILE, READ_FILE = 1 << 1, 1 << 2
WRITE_RIGHTS = WRITE_FILE | sum(1 << bit for bit in range(4, 13))  # remove dir/file, make char/dir/reg/sock/fifo/block/sym
REFER, TRUNCATE = 1 << 13, 1 << 14


def _libc():
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    return libc


def _landlock_abi(libc):
    return int(libc.syscall(LANDLOCK_CREATE, None, 0, 1))  # LANDLOCK_CREATE_RULESET_VERSION


def _seccomp_arch():
    machine = platform.machine()
    return machine if machine in AUDIT_ARCH else None


def available_layers():
    """The confinement layers this kernel offers: a subset of ("landlock", "seccomp")."""
    if not os.uname().sysname == "Linux":
        return []
    libc = _libc()
    layers = []
    if _landlock_abi(libc) >= 1:
        layers.append("landlock")
    if _seccomp_arch() and libc.prctl(PR_GET_SECCOMP, 0, 0, 0, 0) == 0:
        layers.append("seccomp")
    return layers


def _check(result, what):
    if result < 0:
        raise OSError(ctypes.get_errno(), f"sandbox: {what} failed: {os.strerror(ctypes.get_errno())}")
    return result


def _restrict_writes(libc, folder):
    abi = _landlock_abi(libc)
    handled = WRITE_RIGHTS | (REFER if abi >= 2 else 0) | (TRUNCATE if abi >= 3 else 0)
    ruleset = struct.pack("Q", handled)  # struct landlock_ruleset_attr {handled_access_fs}
    ruleset_fd = _check(libc.syscall(LANDLOCK_CREATE, ruleset, len(ruleset), 0), "landlock_create_ruleset")
    file_rights = WRITE_FILE | (TRUNCATE if abi >= 3 else 0)
    for path, allowed in ((folder, handled), ("/dev/null", file_rights)):
        descriptor = os.open(path, os.O_PATH | os.O_CLOEXEC)
        rule = struct.pack("=Qi", allowed, descriptor)  # struct landlock_path_beneath_attr (packed)
        _check(libc.syscall(LANDLOCK_ADD_RULE, ruleset_fd, 1, rule, 0), f"landlock_add_rule({path})")
        os.close(descriptor)
    _check(libc.syscall(LANDLOCK_RESTRICT, ruleset_fd, 0), "landlock_restrict_self")
    os.close(ruleset_fd)


def _filter_program(arch):
    """A classic-BPF seccomp filter: deny DENIED_SYSCALLS, clone without CLONE_THREAD and clone3."""
    column = 0 if arch == "x86_64" else 1
    denied = sorted({numbers[column] for numbers in DENIED_SYSCALLS.values() if numbers[column] is not None})
    code = []  # (opcode, jump if true, jump if false, k); jumps are filled in by label below

    def add(op, k, true=0, false=0):
        code.append([op, true, false, k])

    load, equal, at_least, has_bits, give = 0x20, 0x15, 0x35, 0x45, 0x06
    add(load, 4)  # seccomp_data.arch
    add(equal, AUDIT_ARCH[arch], 0, "deny")
    add(load, 0)  # seccomp_data.nr
    if arch == "x86_64":
        add(at_least, 0x40000000, "deny", 0)  # the x32 ABI
    for number in denied:
        add(equal, number, "deny", 0)
    add(equal, CLONE3[column], "nosys", 0)  # glibc then falls back to clone for threads
    add(equal, CLONE[column], 0, "allow")
    add(load, 16)  # low word of args[0]: clone's flags
    add(has_bits, CLONE_THREAD, "allow", "deny")
    labels = {"allow": len(code), "deny": len(code) + 1, "nosys": len(code) + 2}
    add(give, SECCOMP_RET_ALLOW)
    add(give, SECCOMP_RET_ERRNO | EPERM)
    add(give, SECCOMP_RET_ERRNO | ENOSYS)
    packed = b""
    for index, (op, true, false, k) in enumerate(code):
        true = labels[true] - index - 1 if isinstance(true, str) else true
        false = labels[false] - index - 1 if isinstance(false, str) else false
        packed += struct.pack("HBBI", op, true, false, k)
    return packed, len(code)


class _FilterProgram(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_char_p)]


def _deny_syscalls(libc, arch):
    packed, length = _filter_program(arch)
    program = _FilterProgram(length, packed)
    _check(libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.addressof(program), 0, 0), "seccomp")


def _drop_capabilities(libc):
    header = struct.pack("Ii", 0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3, this process
    data = bytes(24)  # two {effective, permitted, inheritable} sets, all empty
    _check(libc.capset(header, data), "capset")


def confine(folder):
    """Apply every available layer to this process (irreversibly); the names of those applied."""
    if os.uname().sysname != "Linux":
        return []
    libc = _libc()
    applied = []
    _check(libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0), "prctl(PR_SET_DUMPABLE)")
    _check(libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "prctl(PR_SET_NO_NEW_PRIVS)")
    _drop_capabilities(libc)
    applied.append("no-capabilities")
    if _landlock_abi(libc) >= 1:
        _restrict_writes(libc, folder)
        applied.append("landlock")
    arch = _seccomp_arch()
    if arch:
        _deny_syscalls(libc, arch)
        applied.append("seccomp")
    return applied

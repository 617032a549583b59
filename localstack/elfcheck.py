"""Whether a function's bootstrap can run here as it would in Lambda: its architecture and the glibc it needs.

The emulator runs the deployed binary directly on this host, not in Lambda's Amazon Linux image. A binary
linked against a newer glibc than the runtime's (provided.al2023 ships glibc 2.34, provided.al2 glibc 2.26)
fails in Lambda with "version `GLIBC_2.xx' not found", and may fail or, worse, run here. So before starting
it the emulator reads the glibc versions the ELF file asks for (its GNU version-needs section, the same
list `objdump -T` shows) and refuses what either Lambda's runtime or this host could not load.
"""

import os
import platform
import re
import struct

# glibc of the OS-only runtimes (Lambda developer guide, "Lambda runtimes": provided.al2023 is based on
# Amazon Linux 2023, glibc 2.34; provided.al2 on Amazon Linux 2, glibc 2.26).
RUNTIME_GLIBC = {"provided.al2023": (2, 34), "provided.al2": (2, 26)}

# ELF e_machine values against Lambda's architecture names and this host's.
MACHINES = {62: "x86_64", 183: "arm64"}
HOST_ARCH = {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "arm64", "arm64": "arm64"}.get(platform.machine().lower())

SHT_GNU_VERNEED = 0x6FFFFFFE
GLIBC = re.compile(rb"GLIBC_(\d+)\.(\d+)(?:\.(\d+))?$")


class Refused(Exception):
    """The bootstrap cannot run as Lambda would run it; the message says why, for the function's log."""


def host_glibc():
    """This host's glibc version as a tuple, or None where there is no glibc."""
    try:
        name, _, version = (os.confstr("CS_GNU_LIBC_VERSION") or "").partition(" ")
    except (ValueError, OSError):
        return None
    return tuple(int(p) for p in version.split(".")[:2]) if name == "glibc" and version else None


def show(version):
    return ".".join(str(p) for p in version)


def inspect(path):
    """(architecture, sorted glibc versions needed) of an ELF file, or None if it is not ELF (a script)."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:4] != b"\x7fELF":
        return None
    wide, order = data[4] == 2, "<" if data[5] == 1 else ">"
    machine = struct.unpack_from(order + "H", data, 18)[0]
    if wide:
        shoff, = struct.unpack_from(order + "Q", data, 40)
        shentsize, shnum = struct.unpack_from(order + "HH", data, 58)
        section = order + "IIQQQQIIQQ"
    else:
        shoff, = struct.unpack_from(order + "I", data, 32)
        shentsize, shnum = struct.unpack_from(order + "HH", data, 46)
        section = order + "IIIIIIIIII"
    sections = [struct.unpack_from(section, data, shoff + i * shentsize) for i in range(shnum)]
    names = set()
    for _name, kind, _flags, _addr, offset, _size, link, info, _align, _entsize in sections:
        if kind != SHT_GNU_VERNEED or link >= len(sections):
            continue
        strings = sections[link][4]
        need = offset
        for _ in range(info):
            _version, count, _file, aux, following = struct.unpack_from(order + "HHIII", data, need)
            entry = need + aux
            for _ in range(count):
                _hash, _flags2, _other, name, after = struct.unpack_from(order + "IHHII", data, entry)
                start = strings + name
                names.add(data[start:data.index(b"\0", start)])
                entry += after
            need += following
    if not sections:
        # No section headers: the version names are still in the dynamic string table.
        names = set(re.findall(rb"GLIBC_\d+\.\d+(?:\.\d+)?(?=\0)", data))
    versions = sorted({tuple(int(p) for p in m.groups() if p) for m in map(GLIBC.match, names) if m})
    return MACHINES.get(machine, f"machine {machine}"), versions


def check(path, runtime, architecture):
    """Raises Refused if the bootstrap at `path` could not run in Lambda's `runtime` on `architecture`, or here."""
    found = inspect(path)
    if found is None:
        return
    arch, versions = found
    if arch != architecture:
        raise Refused(f"bootstrap is built for {arch} but the function's architecture is {architecture} "
                      "(Lambda fails it with Runtime.InvalidEntrypoint: exec format error)")
    if arch != HOST_ARCH:
        raise Refused(f"bootstrap is built for {arch}; this host is {platform.machine()} and cannot run it")
    if not versions:
        return
    needed = versions[-1]
    limit = RUNTIME_GLIBC.get(runtime or "")
    if limit and needed > limit:
        raise Refused(f"bootstrap needs GLIBC_{show(needed)} but the {runtime} runtime has glibc {show(limit)}: "
                      f"Lambda would fail it with \"version `GLIBC_{show(needed)}' not found\"; "
                      "build it against an older glibc")
    host = host_glibc()
    if host is None or needed > host:
        have = f"glibc {show(host)}" if host else "no glibc"
        raise Refused(f"bootstrap needs GLIBC_{show(needed)} but this host has {have}, so the emulator cannot run it")

#!/usr/bin/env python3
"""Flash and static RAM of a firmware image, by crate and by module.

    footprint.py IMAGE [--top N]

Reads `size -A` for the section totals and `nm -C --size-sort -S` for every symbol, and
attributes each symbol to the crate and module its (demangled) name starts with: a trait
method `<T as Trait>::f` to T's crate (to the trait's when T is a primitive), generic glue
such as `core::ptr::drop_in_place<T>` to core, where the code is written. Flash counts
.vector_table, .text, .rodata and .data (its initial image); static RAM .data and .bss.
"""
import re
import signal
import subprocess
import sys
from collections import defaultdict

FLASH_SECTIONS = (".vector_table", ".text", ".rodata", ".data")
RAM_SECTIONS = (".data", ".bss", ".uninit")
PRIMITIVES = {"str", "char", "bool", "u8", "u16", "u32", "u64", "u128", "usize", "i8",
              "i16", "i32", "i64", "i128", "isize", "f32", "f64", "()"}


def sections(image):
    out = subprocess.run(["size", "-A", image], capture_output=True, text=True, check=True)
    sizes = {}
    for line in out.stdout.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0].startswith(".") and parts[1].isdigit():
            sizes[parts[0]] = int(parts[1])
    # Code placed in a section of its own (the memory.x files' .text.sha256) is text too.
    for name in [name for name in sizes if name.startswith(".text.")]:
        sizes[".text"] = sizes.get(".text", 0) + sizes.pop(name)
    return sizes


def symbols(image):
    out = subprocess.run(["nm", "-C", "--size-sort", "-S", image], capture_output=True,
                         text=True, check=True)
    for line in out.stdout.splitlines():
        m = re.match(r"^([0-9a-f]+) ([0-9a-f]+) (\w) (.*)$", line)
        if m:
            yield int(m.group(2), 16), m.group(3), m.group(4)


def split_path(path):
    """Top-level `::` components of a path, ignoring those inside <...>."""
    parts, depth, cur = [], 0, ""
    i = 0
    while i < len(path):
        c = path[i]
        if c == "<":
            depth += 1
        elif c == ">":
            depth -= 1
        if depth == 0 and path.startswith("::", i):
            parts.append(cur)
            cur = ""
            i += 2
            continue
        cur += c
        i += 1
    parts.append(cur)
    return parts


def owner(name):
    """(crate, module) a symbol belongs to."""
    if name.startswith(".L") or name.startswith("anon."):
        return "(anonymous constants)", "(anonymous constants)"
    if name.startswith("<"):
        # <A as B>::f, or <A>::f
        depth = 0
        for i, c in enumerate(name):
            depth += c == "<"
            depth -= c == ">"
            if depth == 0:
                inner = name[1:i]
                break
        else:
            inner = name[1:]
        subject, _, trait = inner.partition(" as ")
        subject = subject.lstrip("&*").replace("mut ", "").replace("const ", "")
        head = split_path(subject)[0].split("<")[0].strip("[]()")
        if head in PRIMITIVES or not head or "::" not in subject:
            if trait:
                return owner(trait)
            return "core", "core"
        return owner(subject)
    parts = split_path(name)
    if len(parts) == 1:
        return "(runtime and linker symbols)", "(runtime and linker symbols)"
    crate = parts[0].split("<")[0]
    module = "::".join(p.split("<")[0] for p in parts[: 2 if len(parts) > 2 else 1])
    return crate, module


def main():
    # A reader that stops early (head) ends the report quietly.
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    image = sys.argv[1]
    top = int(sys.argv[sys.argv.index("--top") + 1]) if "--top" in sys.argv else 25
    sizes = sections(image)
    flash = sum(sizes.get(s, 0) for s in FLASH_SECTIONS)
    ram = sum(sizes.get(s, 0) for s in RAM_SECTIONS)
    by_crate = defaultdict(lambda: [0, 0])
    by_module = defaultdict(lambda: [0, 0])
    largest = []
    attributed = [0, 0]
    for size, kind, name in symbols(image):
        k = kind.lower()
        if k in "tr":
            slot = 0
        elif k == "d":
            slot = None  # counted in both: its image in flash, its copy in RAM
        elif k == "b":
            slot = 1
        else:
            continue
        crate, module = owner(name)
        for table, key in ((by_crate, crate), (by_module, module)):
            if slot is None:
                table[key][0] += size
                table[key][1] += size
            else:
                table[key][slot] += size
        if slot is None:
            attributed[0] += size
            attributed[1] += size
        else:
            attributed[slot] += size
        largest.append((size, "flash" if slot != 1 else "ram", name))
    print(f"flash {flash} B, target 65536 (vector table {sizes.get('.vector_table', 0)}, text "
          f"{sizes.get('.text', 0)}, rodata {sizes.get('.rodata', 0)}, data {sizes.get('.data', 0)})")
    print(f"static_ram {ram} B, target 61440 (data {sizes.get('.data', 0)}, bss {sizes.get('.bss', 0)})")
    print(f"symbols account for {attributed[0]} B of flash and {attributed[1]} B of RAM; the"
          " rest is alignment and code nm names no size for")

    def table(title, rows):
        print(f"\n{title}")
        print(f"{'flash':>8} {'ram':>8}  name")
        for key, (f, r) in sorted(rows.items(), key=lambda kv: (-kv[1][0], -kv[1][1])):
            if f or r:
                print(f"{f:>8} {r:>8}  {key}")

    table("by crate", by_crate)
    table("by module (the first two components of a path)",
          {k: v for k, v in by_module.items() if v[0] >= 256 or v[1] >= 256})
    print(f"\nlargest {top} flash symbols")
    for size, where, name in sorted((x for x in largest if x[1] == "flash"), reverse=True)[:top]:
        print(f"{size:>8}  {name[:150]}")


if __name__ == "__main__":
    main()

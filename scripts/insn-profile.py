#!/usr/bin/env python3
"""Instructions a firmware image executed under QEMU, by function, exact and independent of
the machine's load: reads QEMU's `-d in_asm,exec,nochain` log (every translated block's
instructions once, then one line per block executed) and attributes every instruction to
the ELF's symbols.

  insn-profile.py LOG ELF [sym|inline] [TOP] [NAMES]

`sym` (the default) names the function the instruction lies in; `inline` the innermost
ringnet, smoltcp or firmware function it was inlined from (addr2line over the image's
debug info). NAMES, comma-separated parts of symbol names, also prints how often each
matching function was entered (executions of the block at its first address).
scripts/insn-profile.sh boots an image with the log on and runs one transfer.
"""
import bisect
import collections
import re
import subprocess
import sys

log, elf = sys.argv[1], sys.argv[2]
mode = sys.argv[3] if len(sys.argv) > 3 else "sym"
top = int(sys.argv[4]) if len(sys.argv) > 4 else 40
names = sys.argv[5].split(",") if len(sys.argv) > 5 else []

block_insns = {}  # translated block (host address) -> guest addresses of its instructions
block_runs = collections.Counter()
pending = None
insn = re.compile(r"^0x([0-9a-f]{8}):")
with open(log, "r", errors="replace") as f:
    for line in f:
        if line.startswith("Trace"):
            block = line.split()[2]
            if pending is not None:
                block_insns[block] = pending
                pending = None
            block_runs[block] += 1
        elif line.startswith("IN:"):
            pending = []
        elif pending is not None:
            m = insn.match(line)
            if m:
                pending.append(int(m.group(1), 16))

runs = collections.Counter()  # guest address -> executions
entries = collections.Counter()  # first address of a block -> executions
for block, n in block_runs.items():
    addresses = block_insns.get(block, ())
    for pc in addresses:
        runs[pc] += n
    if addresses:
        entries[addresses[0]] += n
total = sum(runs.values())
print(f"total instructions: {total}")

symbols = []
nm = subprocess.run(["nm", "-C", "-n", "-S", elf], capture_output=True, text=True).stdout
for line in nm.splitlines():
    p = line.split(None, 3)
    if len(p) == 4 and p[2] in "tTwW":
        symbols.append((int(p[0], 16) & ~1, int(p[1], 16), p[3]))
starts = [s[0] for s in symbols]


def symbol(pc):
    i = bisect.bisect_right(starts, pc) - 1
    if i >= 0 and pc < symbols[i][0] + max(symbols[i][1], 1):
        return symbols[i][2]
    return "?"


def own(name):
    # The frames worth naming: not core's, nor a primitive type's impls.
    return not re.match(r"^(<?core::|<?\[|<?&|<\*|<(u|i)(8|16|32|64|size)\b|<bool|\$|\?\?)", name)


by = collections.Counter()
if mode == "inline":
    pcs = sorted(runs)
    out = subprocess.run(
        ["addr2line", "-i", "-f", "-C", "-e", elf, "-a"] + [hex(p) for p in pcs],
        capture_output=True,
        text=True,
    ).stdout.splitlines()
    frames, current = {}, None
    for line in out:
        if line.startswith("0x"):
            current = int(line, 16)
            frames[current] = []
        elif current is not None:
            frames[current].append(line)
    for pc, n in runs.items():
        functions = frames.get(pc, [])[0::2]
        named = [f for f in functions if own(f)]
        by[named[0] if named else (functions[0] if functions else "?")] += n
else:
    for pc, n in runs.items():
        by[symbol(pc)] += n
for name, n in by.most_common(top):
    print(f"{n:>10} {100 * n / total:5.1f}%  {name[:150]}")
for part in names:
    for start, _, name in symbols:
        if part in name:
            print(f"entered {entries[start]:>8}  {name[:120]}")

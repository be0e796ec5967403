#!/usr/bin/env python3
"""tools/kernel_parts.py - attn/dsa.cu.h's launchers against its module table.

The sparse source compiles as three modules (SPARSE_PART 0, 1, 2), each holding only the kernels
that sparse_part_kernels_ lists for it (tests/nvrtc_compile checks the modules against that
table). A launcher that asks for a kernel with another part's options gets "no kernel named ..."
on the GPU. This reads every gpu_kernel(..., SPARSE_KERNELS_SRC, "name", opts) call and checks
that its options are its kernel's part: SPARSE_COMMON_OPTS for part 0, a buffer last filled by
sparse_attn_opts_ (part 1) or sparse_index_opts_ (part 2) in the same function.

usage: tools/kernel_parts.py [attn/dsa.cu.h]
Prints one line per mismatch and a summary; exit 0 when every call matches, 1 if not, 2 when the
file or its table cannot be read.
"""
import re
import sys


def main(path):
    try:
        src = open(path).read()
    except OSError as e:
        print(f"kernel_parts: {e}", file=sys.stderr)
        return 2
    table = re.search(r'sparse_part_kernels_\[3\]\[\d+\] = \{(.*?)\};', src, re.S)
    if not table:
        print(f"kernel_parts: {path} has no sparse_part_kernels_ table", file=sys.stderr)
        return 2
    part_of = {}
    for p, row in enumerate(re.findall(r'\{([^{}]*)\}', table.group(1))):
        for name in re.findall(r'"(\w+)"', row):
            part_of[name] = p
    # host functions start at column 0 with GPUDEF or static
    host = src[src.index('/* ---------------------------------------------------------------- host'):] \
        if '/* ---------------------------------------------------------------- host' in src else src
    calls = bad = 0
    for fn in re.split(r'\n(?=(?:GPUDEF|static) )', host):
        for m in re.finditer(r'gpu_kernel\(\w+, SPARSE_KERNELS_SRC, (.*?), (\w+)\)', fn):
            opts = m.group(2)
            if opts == 'SPARSE_COMMON_OPTS':
                part = 0
            else:
                before = fn[:m.start()]
                pos, part = max((before.rfind('sparse_attn_opts_(' + opts), 1),
                                (before.rfind('sparse_index_opts_(' + opts), 2))
                if pos < 0:
                    part = None
            line = src.count('\n', 0, src.index(m.group(0))) + 1
            for name in re.findall(r'"(\w+)"', m.group(1)):
                calls += 1
                if part_of.get(name) != part:
                    bad += 1
                    print(f"{path}:{line}: {name} is asked for with {opts} (part {part}), "
                          f"but sparse_part_kernels_ puts it in part {part_of.get(name)}")
    print(f"kernel_parts: {calls} kernel lookups, {bad} with another part's options")
    if calls == 0:
        print("kernel_parts: no gpu_kernel call found", file=sys.stderr)
        return 2
    return 1 if bad else 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else 'attn/dsa.cu.h'))

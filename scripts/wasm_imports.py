#!/usr/bin/env python3
"""Prints the imports of a wasm module, one `module.field` per line.

Hand-written (the format's import section is small) so the check needs no extra tool."""
import sys


def leb(data, pos):
    result = shift = 0
    while True:
        b = data[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return result, pos


def name(data, pos):
    n, pos = leb(data, pos)
    return data[pos:pos + n].decode(), pos + n


def limits(data, pos):
    flag = data[pos]
    _, pos = leb(data, pos + 1)
    if flag & 1:
        _, pos = leb(data, pos)
    return pos


def imports(data):
    assert data[:4] == b"\0asm", "not a wasm module"
    pos = 8
    while pos < len(data):
        sid = data[pos]
        size, pos = leb(data, pos + 1)
        end = pos + size
        if sid == 2:
            count, p = leb(data, pos)
            for _ in range(count):
                module, p = name(data, p)
                field, p = name(data, p)
                kind = data[p]
                p += 1
                if kind == 0:
                    _, p = leb(data, p)
                elif kind == 1:
                    p = limits(data, p + 1)
                elif kind == 2:
                    p = limits(data, p)
                elif kind == 3:
                    p += 2
                else:
                    _, p = leb(data, p)
                yield module, field
        pos = end


if __name__ == "__main__":
    for module, field in imports(open(sys.argv[1], "rb").read()):
        print(f"{module}.{field}")

#!/usr/bin/env python3
"""Replaces the bodies of Rust's panic entry points in a wasm module (with its name section)
by a bare `unreachable`, so that wasm-opt can drop the panic message formatting (core::fmt,
Debug impls, Unicode tables) that only panics reach.

A panic in this module is already fatal (panic=abort traps); this only removes the message
nobody could read. Stable Rust has no `panic_immediate_abort`, hence this post-link step.
Usage: stub-panics.py IN.wasm OUT.wasm
"""
import re
import sys

PATTERNS = re.compile(
    r'rust_begin_unwind|panic_fmt|panic_bounds_check|slice_error_fail|slice_index_fail|'
    r'slice_start_index|slice_end_index|str_index_overflow|unwrap_failed|expect_failed|'
    r'panic_const|panic_nounwind|panic_in_cleanup|capacity_overflow|handle_alloc_error|'
    r'4core9panicking|panicking.*panic|begin_panic|rust_panic|__rdl_oom|assert_failed|'
    r'option_unwrap_failed|result_unwrap_failed|panic_misaligned|panic_display|panic_str'
)


def leb(b, i):
    r = s = 0
    while True:
        x = b[i]; i += 1
        r |= (x & 0x7F) << s; s += 7
        if x < 0x80:
            return r, i


def uleb(n):
    out = bytearray()
    while True:
        x = n & 0x7F; n >>= 7
        if n:
            out.append(x | 0x80)
        else:
            out.append(x); return bytes(out)


def main(src, dst):
    b = open(src, 'rb').read()
    sections, i = [], 8
    while i < len(b):
        sid = b[i]; size, j = leb(b, i + 1)
        sections.append((sid, b[j:j + size])); i = j + size
    n_imports, names = 0, {}
    for sid, body in sections:
        if sid == 2:
            cnt, j = leb(body, 0)
            for _ in range(cnt):
                for _ in range(2):
                    ln, j = leb(body, j); j += ln
                kind = body[j]; j += 1
                if kind == 0:
                    n_imports += 1; _, j = leb(body, j)
                elif kind in (1, 2):
                    if kind == 1: j += 1
                    fl, j = leb(body, j); _, j = leb(body, j)
                    if fl & 1: _, j = leb(body, j)
                else:
                    j += 2
        if sid == 0:
            ln, j = leb(body, 0)
            if body[j:j + ln] == b'name':
                j += ln
                while j < len(body):
                    sub = body[j]; ssz, j = leb(body, j + 1); send = j + ssz
                    if sub == 1:
                        cnt, j = leb(body, j)
                        for _ in range(cnt):
                            idx, j = leb(body, j); ln, j = leb(body, j)
                            names[idx] = body[j:j + ln].decode(errors='replace'); j += ln
                    j = send
    if not names:
        sys.exit('stub-panics: no name section (build with strip=false)')
    out, stubbed = bytearray(b[:8]), []
    for sid, body in sections:
        if sid == 10:
            cnt, j = leb(body, 0)
            new = bytearray(uleb(cnt))
            for k in range(cnt):
                sz, j2 = leb(body, j)
                fn = body[j2:j2 + sz]; j = j2 + sz
                name = names.get(n_imports + k, '')
                if PATTERNS.search(name):
                    fn = b'\x00\x00\x0b'  # no locals; unreachable; end
                    stubbed.append(name)
                new += uleb(len(fn)) + fn
            body = bytes(new)
        out += bytes([sid]) + uleb(len(body)) + body
    open(dst, 'wb').write(out)
    print(f'stub-panics: {len(stubbed)} panic entry points stubbed', file=sys.stderr)


if __name__ == '__main__':
    main(sys.argv[1], sys.argv[2])

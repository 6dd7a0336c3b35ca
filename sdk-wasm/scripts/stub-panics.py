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
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / 'scripts'))
from wasm_module import function_bodies, function_names, imports, sections, uleb  # noqa: E402

PATTERNS = re.compile(
    r'rust_begin_unwind|panic_fmt|panic_bounds_check|slice_error_fail|slice_index_fail|'
    r'slice_start_index|slice_end_index|str_index_overflow|unwrap_failed|expect_failed|'
    r'panic_const|panic_nounwind|panic_in_cleanup|capacity_overflow|handle_alloc_error|'
    r'4core9panicking|panicking.*panic|begin_panic|rust_panic|__rdl_oom|assert_failed|'
    r'option_unwrap_failed|result_unwrap_failed|panic_misaligned|panic_display|panic_str'
)


def main(src, dst):
    secs = sections(open(src, 'rb').read())
    names = function_names(secs)
    if not names:
        sys.exit('stub-panics: no name section (build with strip=false)')
    n_imports = sum(1 for _, _, kind in imports(secs) if kind == 0)
    out, stubbed = bytearray(b'\0asm\x01\0\0\0'), []
    for sid, body in secs:
        if sid == 10:
            bodies = function_bodies(secs)
            new = bytearray(uleb(len(bodies)))
            for k, fn in enumerate(bodies):
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

#!/usr/bin/env python3
"""Takes out of a wasm-bindgen output module's function table the entries only its build-time
descriptors used, so wasm-opt can remove their code: unlist-describe-only.py IN OUT

Every js-sys or web-sys import that takes a closure (`Int8Array::for_each`, `Set::for_each`,
`Array::find`, ...) has a descriptor function that wasm-bindgen exports and reads while it
builds the glue, whether or not the import is used. The descriptor names the closure's invoke
shim by its function-table index, so the compiler puts every such shim in the table, and the
table keeps it alive after wasm-bindgen has removed the descriptors: neither wasm-bindgen nor
wasm-opt can tell that no code calls it through the table (wasm-bindgen issue #2535). At run
time the glue calls the shims the program's own closures need through exports, never through
the table, and Rust code reaches the table only through vtables (`dyn Fn`, wakers), which
these shims are not in. The same holds for js-sys's JSPI task waker (its vtable is reached
only from the spawning of a task, which this package never does).

Those entries become `ref.null func`: a call through one would trap, not run something else.
The module's table indexes do not move. Fails when the module has no name section (without
names nothing can be matched) or when nothing matched (the build changed; look again)."""
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / 'scripts'))
from wasm_module import function_names, imports, leb, sections  # noqa: E402

DESCRIBE_ONLY = re.compile(r'wasm_bindgen(\[[0-9a-f]+\])?::convert::closures::_::invoke::<.*>$'
                           r'|js_sys(\[[0-9a-f]+\])?::futures::jspi::task_waker::raw_')


def uleb(n):
    out = bytearray()
    while True:
        b, n = n & 0x7F, n >> 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def rewrite_elements(body, unlisted):
    """The element section with every entry in `unlisted` made null. Segments of function
    indexes (flags 0 and 2) become segments of expressions (4 and 6); others stay as they are."""
    count, p = leb(body, 0)
    out = bytearray(uleb(count))
    nulled = 0
    for _ in range(count):
        flag, q = leb(body, p)
        if flag not in (0, 2):
            raise SystemExit(f'element segment with flags {flag}: not handled (look again)')
        table = b''
        if flag == 2:
            t, q = leb(body, q)
            table = uleb(t)
        end = body.index(0x0B, q) + 1  # the offset: one i32.const, then `end`
        offset, q = body[q:end], end
        if flag == 2:
            assert body[q] == 0x00, 'element kind other than funcref'
            q += 1
        n, q = leb(body, q)
        exprs = bytearray()
        for _ in range(n):
            f, q = leb(body, q)
            if f in unlisted:
                exprs += b'\xd0\x70\x0b'  # ref.null func
                nulled += 1
            else:
                exprs += b'\xd2' + uleb(f) + b'\x0b'  # ref.func f
        out += uleb(flag + 4) + table + offset + (b'\x70' if flag == 2 else b'') + uleb(n) + exprs
        p = q
    return bytes(out), nulled


def main(src, dst):
    data = Path(src).read_bytes()
    secs = sections(data)
    names = function_names(secs)
    if not names:
        raise SystemExit(f'{src} has no name section')
    unlisted = {i for i, name in names.items() if DESCRIBE_ONLY.search(name)}
    n_imports = sum(1 for _, _, kind in imports(secs) if kind == 0)
    assert all(i >= n_imports for i in unlisted)
    out = bytearray(data[:8])
    nulled = 0
    for sid, body in secs:
        if sid == 9:
            body, nulled = rewrite_elements(body, unlisted)
        out += bytes([sid]) + uleb(len(body)) + body
    if not nulled:
        raise SystemExit(f'{src}: no describe-only table entry found')
    Path(dst).write_bytes(out)
    print(f'{nulled} describe-only function-table entries unlisted', file=sys.stderr)


if __name__ == '__main__':
    main(*sys.argv[1:])

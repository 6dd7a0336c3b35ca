#!/usr/bin/env python3
"""Where a wasm module's code goes, for when the package grows. Give it a module with its name
section: scripts/build.sh keeps one of each build as <target dir>/pkg*.named.wasm. Generic std
code counts in the part it was instantiated for.

    wasm-sizes.py MODULE [TOP]     the TOP largest functions (default 40)
    wasm-sizes.py --parts MODULE   code by part: the engine, the driver, the bindings, std, the
                                   allocator, with each part's bodies gzipped on their own (an
                                   estimate of its share of the package: gzip of the whole is
                                   less than the sum)
"""
import gzip
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / 'scripts'))
from wasm_module import function_bodies, function_names, imports, sections  # noqa: E402

# First match wins; names are as wasm-bindgen writes them (demangled, crate hashes in brackets)
# or v0-mangled (raw rustc output), so both spellings are listed.
PARTS = [
    ('allocator', r'empmix_wasm\W+heap|4heap'),
    ('driver: tabs (storage)', r'empmix_wasm\W+tabs|4tabs'),
    ('driver: browser IO', r'empmix_wasm\W+browser|7browser|^client_'),
    ('driver: engine wrapper', r'empmix_wasm|11empmix_wasm|^em_'),
    ('engine (empmix-core)', r'empmix_core|11empmix_core'),
    ('bindings: futures', r'futures'),
    ('bindings: wasm-bindgen, js-sys, web-sys, gloo', r'wasm_bindgen|js_sys|web_sys|gloo|__wbindgen|__externref|__wbg'),
    ('std: collections, strings, sorting, iterators', r'.'),
]


def functions(path):
    b = open(path, 'rb').read()
    secs = sections(b)
    names = function_names(secs)
    n_imports = sum(1 for _, _, kind in imports(secs) if kind == 0)
    return len(b), [(names.get(n_imports + k, f'func[{n_imports + k}]'), body) for k, body in enumerate(function_bodies(secs))]


def parts(path):
    size, funcs = functions(path)
    by = {name: [] for name, _ in PARTS}
    for name, body in funcs:
        # Generic code is named after where it is instantiated last: look at the outermost path.
        head = re.sub(r'\[[0-9a-f]+\]', '', name)
        part = next(p for p, pat in PARTS if re.search(pat, head.split('::<')[0]) or (p != PARTS[-1][0] and re.search(pat, head)))
        by[part].append(body)
    total = sum(len(b) for _, b in funcs)
    print(f'{size} bytes, {len(funcs)} functions, code {total} bytes')
    print(f'{"part":48s} {"code":>8s} {"share":>6s} {"gzip":>7s}')
    for part, bodies in by.items():
        code = sum(map(len, bodies))
        print(f'{part:48s} {code:8d} {100 * code / total:5.1f}% {len(gzip.compress(b"".join(bodies), 9)):7d}')


def top(path, n=40):
    size, funcs = functions(path)
    rows = sorted(((len(body), name) for name, body in funcs), reverse=True)
    print(f'{size} bytes, {len(funcs)} functions, code {sum(len(b) for _, b in funcs)} bytes')
    for sz, nm in rows[:n]:
        print(f'{sz:7d}  {nm[:150]}')


if __name__ == '__main__':
    if sys.argv[1] == '--parts':
        parts(sys.argv[2])
    else:
        top(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 40)

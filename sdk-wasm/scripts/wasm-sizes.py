#!/usr/bin/env python3
"""Lists the largest functions of a wasm module that has a name section (a size profiler
for when the package grows: build with `--config profile.wasm-release.strip=false`)."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / 'scripts'))
from wasm_module import function_bodies, function_names, imports, sections  # noqa: E402


def main(path, top=40):
    b = open(path, 'rb').read()
    secs = sections(b)
    names = function_names(secs)
    n_imports = sum(1 for _, _, kind in imports(secs) if kind == 0)
    sizes = [len(fn) for fn in function_bodies(secs)]
    rows = sorted(((sz, names.get(n_imports + k, f'func[{n_imports + k}]')) for k, sz in enumerate(sizes)), reverse=True)
    print(f'{len(b)} bytes, {len(sizes)} functions, code {sum(sizes)} bytes')
    for sz, nm in rows[:top]:
        print(f'{sz:7d}  {nm[:150]}')


if __name__ == '__main__':
    main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 40)

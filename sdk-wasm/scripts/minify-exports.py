#!/usr/bin/env python3
"""Applies wasm-opt's `--minify-imports-and-exports` renames to the shipped build's minified
driver, which calls the engine's raw exports by name (`w.em_track`, `w.memory`): their names
cost the package about 0.7 KB gzip, in the wasm and in the JavaScript.

    minify-exports.py INDEX.js NAMES.json EXPORTS.json

Rewrites INDEX.js in place and writes EXPORTS.json, {old name: new name}, for the tests that
reach the engine's exports. Fails (exit 1) when a name the driver uses is not renamed, or a
renamed one is not found, so a driver that calls an export some other way stops the build
instead of shipping a package that cannot call it."""
import json
import re
import sys


def main(index_path, names_path, exports_path):
    js = open(index_path).read()
    names = json.load(open(names_path))
    if names['imports']:
        sys.exit('the shipped engine imports nothing; this one does')
    renames = dict(names['exports'])
    for old, new in renames.items():
        if old in ('__data_end', '__heap_base'):  # the linker's, unused by the driver
            continue
        access = '.' + new if re.fullmatch(r'[A-Za-z_$][\w$]*', new) else '[' + json.dumps(new) + ']'
        # `memory` is a common property name: only the engine's (`this.w.memory`) is renamed.
        owner = r'(?<=\.w)' if old == 'memory' else ''
        js, n = re.subn(owner + r'\.' + re.escape(old) + r'(?![\w$])', access, js)
        if n == 0:
            sys.exit(f'export {old}: not used by the driver')
    left = sorted(set(re.findall(r'\bem_\w+', js)))
    if left:
        sys.exit(f'the driver uses exports the engine does not have: {left}')
    open(index_path, 'w').write(js)
    json.dump(renames, open(exports_path, 'w'), indent=1)


if __name__ == '__main__':
    main(*sys.argv[1:4])

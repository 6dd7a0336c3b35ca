#!/usr/bin/env python3
"""Applies wasm-opt's `--minify-imports-and-exports-and-modules` renames to the wasm-bindgen
glue, so the module's import and export names (wasm-bindgen's are long: a hash each, and a
closure shim's can run to 300 characters) shrink in both files.

    minify-glue.py GLUE.js NAMES.json MINIFIED.wasm > OUT.js

NAMES.json is what wasm-opt printed: {"imports": [[module, name, new]], "exports": [[old, new]]}.
Every import ends up in the one module the minified wasm imports from. Fails (exit 1) when a
name is not found exactly once where the glue defines or uses it, so a wasm-bindgen whose glue
looks different stops the build instead of shipping a module that cannot link."""
import json
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / 'scripts'))
from wasm_module import imports, sections  # noqa: E402


def main(glue_path, names_path, wasm_path):
    glue = open(glue_path).read()
    names = json.loads(open(names_path).read())
    modules = {m for m, _, kind in imports(sections(open(wasm_path, 'rb').read()))}
    if len(modules) != 1:
        sys.exit(f'expected one import module in {wasm_path}, found {sorted(modules)}')
    (module,) = modules
    # The glue's import objects: `const import0 = {` for its own functions, `import * as import1
    # from "…"` for each snippet module, and the object that maps module names to them.
    own = re.search(r'"([^"]+)": (import\d+),\n', glue)
    own_module, own_var = own.group(1), own.group(2)
    snippet_vars = dict((m, v) for v, m in re.findall(r'^import \* as (import\d+) from "([^"]+)"', glue, re.M))
    extra = []
    for mod, name, new in names['imports']:
        if mod == own_module:
            glue, n = re.subn(r'(?<![\w$])' + re.escape(name) + r'(?=: function)', json.dumps(new), glue)
            if n != 1:
                sys.exit(f'import {name}: defined {n} times in the glue')
        elif mod in snippet_vars:
            extra.append(f'{json.dumps(new)}: {snippet_vars[mod]}.{name}')
        else:
            sys.exit(f'import module {mod} is not in the glue')
    mapping = re.search(r'return \{\n\s*__proto__: null,\n((?:\s*"[^"]+": import\d+,\n)+)\s*\};', glue)
    if not mapping:
        sys.exit('the import object of the glue was not found')
    merged = f'\n        {json.dumps(module)}: Object.assign({own_var}, {{ {", ".join(extra)} }}),\n'
    glue = glue[:mapping.start(1)] + merged + glue[mapping.end(1):]
    for old, new in names['exports']:
        glue, n = re.subn(r'(?<![\w$])wasm\.' + re.escape(old) + r'(?![\w$])', f'wasm[{json.dumps(new)}]', glue)
        if n == 0 and old not in ('__abort_handler', '__instance_terminated'):
            print(f'note: export {old} is not used by the glue', file=sys.stderr)
    sys.stdout.write(glue)


if __name__ == '__main__':
    main(*sys.argv[1:4])

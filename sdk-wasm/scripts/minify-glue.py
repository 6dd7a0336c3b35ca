#!/usr/bin/env python3
"""Applies wasm-opt's `--minify-imports-and-exports-and-modules` renames to the wasm-bindgen
glue, so the module's import and export names (wasm-bindgen's are long: a hash each, and a
closure shim's can run to 300 characters) shrink in both files.

    minify-glue.py GLUE.js NAMES.json MINIFIED.wasm > OUT.js

NAMES.json is what wasm-opt printed: {"imports": [[module, name, new]], "exports": [[old, new]]}.
Every import ends up in the one module the minified wasm imports from. Fails (exit 1) when a
name is not found exactly once where the glue defines or uses it, so a wasm-bindgen whose glue
looks different stops the build instead of shipping a module that cannot link.

It also replaces wasm-bindgen's initialisers (`initSync` and the default export, which fetch
and compile the file themselves and warn about deprecated parameters: 0.5 KB gzip of the
package) with one `instantiate(module)` for the module the loader has compiled
(js/loader.js); it fails when they do not look as expected."""
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
    sys.stdout.write(own_init(glue))


INITIALISERS = re.compile(r'^function initSync\(module\) \{\n.*^export \{ initSync, __wbg_init as default \};\n', re.M | re.S)


def own_init(glue):
    """The glue with its initialisers replaced by `instantiate` (see the module's docs)."""
    if 'function __wbg_finalize_init(instance, module) {' not in glue or 'function __wbg_get_imports() {' not in glue:
        sys.exit('the glue has no __wbg_finalize_init(instance, module) or __wbg_get_imports()')
    # Once per page, as wasm-bindgen's own: every client of the page shares the instance (a
    # second would replace the glue's `wasm` under the first's objects). A failure is not kept.
    glue, n = INITIALISERS.subn(
        'let instantiated;\n'
        'export function instantiate(module) {\n'
        '    return instantiated ||= WebAssembly.instantiate(module, __wbg_get_imports())\n'
        '        .then(instance => __wbg_finalize_init(instance, module), e => { instantiated = null; throw e; });\n'
        '}\n', glue)
    if n != 1:
        sys.exit("the glue's initialisers (initSync ... export { initSync, __wbg_init as default }) were not found")
    return glue


if __name__ == '__main__':
    main(*sys.argv[1:4])

#!/usr/bin/env python3
"""Prints the imports of a wasm module, one `module.field` per line."""
import sys

from wasm_module import imports, sections

if __name__ == "__main__":
    for module, field, _ in imports(sections(open(sys.argv[1], "rb").read())):
        print(f"{module}.{field}")

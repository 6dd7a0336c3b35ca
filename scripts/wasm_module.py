"""Reading a wasm module's sections, imports and function names: the one parser behind
scripts/wasm_imports.py and sdk-wasm/scripts/wasm-sizes.py.

Hand-written (the parts of the format these need are small) so the checks need no extra tool."""


def leb(data, pos):
    """An unsigned LEB128 number at `pos`: (value, position after it)."""
    result = shift = 0
    while True:
        b = data[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return result, pos


def sections(data):
    """The module's sections as (id, body bytes), in order."""
    assert data[:4] == b"\0asm", "not a wasm module"
    out, pos = [], 8
    while pos < len(data):
        size, start = leb(data, pos + 1)
        out.append((data[pos], data[start:start + size]))
        pos = start + size
    return out


def _name(data, pos):
    n, pos = leb(data, pos)
    return data[pos:pos + n].decode(), pos + n


def _limits(data, pos):
    flag, pos = leb(data, pos)
    _, pos = leb(data, pos)
    if flag & 1:
        _, pos = leb(data, pos)
    return pos


def _vectors(secs, wanted):
    """For each section with id `wanted`: (body, entry count, position of the first entry)."""
    for sid, body in secs:
        if sid == wanted:
            count, pos = leb(body, 0)
            yield body, count, pos


def imports(secs):
    """The imports as (module, field, kind); kind 0 is a function."""
    out = []
    for body, count, p in _vectors(secs, 2):
        for _ in range(count):
            module, p = _name(body, p)
            field, p = _name(body, p)
            kind = body[p]
            p += 1
            if kind == 1:  # table: element type, then limits
                p = _limits(body, p + 1)
            elif kind == 2:  # memory
                p = _limits(body, p)
            elif kind == 3:  # global: type, mutability
                p += 2
            else:  # function (type index) or tag
                _, p = leb(body, p)
            out.append((module, field, kind))
    return out


def function_names(secs):
    """Function index -> name, from the `name` custom section (empty without one)."""
    names = {}
    for sid, body in secs:
        if sid != 0:
            continue
        ln, j = leb(body, 0)
        if body[j:j + ln] != b"name":
            continue
        j += ln
        while j < len(body):
            sub = body[j]
            size, j = leb(body, j + 1)
            end = j + size
            if sub == 1:
                count, j = leb(body, j)
                for _ in range(count):
                    idx, j = leb(body, j)
                    ln, j = leb(body, j)
                    names[idx] = body[j:j + ln].decode(errors="replace")
                    j += ln
            j = end
    return names


def function_bodies(secs):
    """The code section's function bodies as they stand in the file (size prefix included),
    in index order after the imported functions."""
    out = []
    for body, count, j in _vectors(secs, 10):
        for _ in range(count):
            size, start = leb(body, j)
            out.append(body[j:start + size])
            j = start + size
    return out

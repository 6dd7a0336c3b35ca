#!/usr/bin/env python3
"""Lists the largest functions of a wasm module that has a name section (a size profiler
for when the package grows: build with `--config profile.wasm-release.strip=false`)."""
import sys


def leb(b, i):
    r = s = 0
    while True:
        x = b[i]; i += 1
        r |= (x & 0x7F) << s; s += 7
        if x < 0x80:
            return r, i


def main(path, top=40):
    b = open(path, 'rb').read()
    i, n_imports, bodies, names = 8, 0, [], {}
    while i < len(b):
        sid = b[i]; size, i = leb(b, i + 1); end = i + size
        if sid == 2:
            cnt, j = leb(b, i)
            for _ in range(cnt):
                for _ in range(2):
                    ln, j = leb(b, j); j += ln
                kind = b[j]; j += 1
                if kind == 0:
                    n_imports += 1; _, j = leb(b, j)
                elif kind == 1:
                    j += 1; fl, j = leb(b, j); _, j = leb(b, j)
                    if fl & 1: _, j = leb(b, j)
                elif kind == 2:
                    fl, j = leb(b, j); _, j = leb(b, j)
                    if fl & 1: _, j = leb(b, j)
                else:
                    j += 2
        elif sid == 10:
            cnt, j = leb(b, i)
            for _ in range(cnt):
                sz, k = leb(b, j); bodies.append(sz + (k - j)); j = k + sz
        elif sid == 0:
            ln, j = leb(b, i); nm = b[j:j + ln].decode(); j += ln
            if nm == 'name':
                while j < end:
                    sub = b[j]; ssz, j = leb(b, j + 1); send = j + ssz
                    if sub == 1:
                        cnt, j = leb(b, j)
                        for _ in range(cnt):
                            idx, j = leb(b, j); ln, j = leb(b, j)
                            names[idx] = b[j:j + ln].decode(errors='replace'); j += ln
                    j = send
        i = end
    rows = sorted(((sz, names.get(n_imports + k, f'func[{n_imports + k}]')) for k, sz in enumerate(bodies)), reverse=True)
    print(f'{len(b)} bytes, {len(bodies)} functions, code {sum(bodies)} bytes')
    for sz, nm in rows[:top]:
        print(f'{sz:7d}  {nm[:150]}')


if __name__ == '__main__':
    main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 40)

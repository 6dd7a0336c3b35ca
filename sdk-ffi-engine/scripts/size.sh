#!/usr/bin/env bash
# libempmix_engine's size budget: builds the library with the `release-small` profile for
# x86_64-unknown-linux-gnu and aarch64-linux-android, strips it, prints the sizes, and fails
# when either is over 600 KB (600,000 bytes) or when the library links tokio, reqwest or rustls.
#
# Android without the NDK: the Rust side is linked with rust-lld (flavor ld.lld) against empty
# stand-ins for bionic's libc, libdl, libm, liblog and the NDK's libunwind, which leaves their
# symbols undefined (as they are in any .so; the NDK's libunwind.a would add its unwinder).
set -euo pipefail
cd "$(dirname "$0")/../.."

LIMIT=600000
ANDROID=aarch64-linux-android
target_dir=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')

deps=$(cargo tree -p empmix-ffi-engine -e normal --prefix none --format '{p}' | cut -d' ' -f1 | sort -u)
for heavy in tokio reqwest rustls hyper; do
    if grep -qx "$heavy" <<<"$deps"; then
        echo "libempmix_engine depends on $heavy: it must link none of tokio, reqwest, rustls" >&2
        exit 1
    fi
done

rustup target add "$ANDROID" >/dev/null 2>&1 || rustup target list --installed | grep -qx "$ANDROID"
stubs=$(mktemp -d)
trap 'rm -rf "$stubs"' EXIT
for lib in c dl m log unwind; do printf '!<arch>\n' >"$stubs/lib$lib.a"; done

cargo build --locked --profile release-small -p empmix-ffi-engine
CARGO_TARGET_AARCH64_LINUX_ANDROID_LINKER=rust-lld \
CARGO_TARGET_AARCH64_LINUX_ANDROID_RUSTFLAGS="-C linker-flavor=ld.lld -L native=$stubs" \
    cargo build --locked --profile release-small -p empmix-ffi-engine --target "$ANDROID"

strip_tool=$(command -v llvm-strip || command -v strip)
failed=0
for target in x86_64-unknown-linux-gnu "$ANDROID"; do
    if [ "$target" = "$ANDROID" ]; then
        lib="$target_dir/$target/release-small/libempmix_engine.so"
    else
        lib="$target_dir/release-small/libempmix_engine.so"
    fi
    out="$stubs/libempmix_engine-$target.so"
    "$strip_tool" -o "$out" "$lib"
    size=$(stat -c %s "$out")
    printf 'libempmix_engine.so %-26s %8d bytes stripped (limit %d)\n' "$target" "$size" "$LIMIT"
    if [ "$size" -gt "$LIMIT" ]; then
        echo "  over the budget" >&2
        failed=1
    fi
done
exit "$failed"

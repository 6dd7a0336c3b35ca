//! The committed header `include/empmix_engine.h` is exactly what the pinned cbindgen generates
//! from the source (the generator is `empmix_ffi_boundary::header`, shared with `libempmix`).
//! After a deliberate ABI change: `UPDATE_HEADER=1 cargo test -p empmix-ffi-engine --test header`.

use std::path::Path;

#[test]
fn committed_header_matches_the_source() {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let checked = empmix_ffi_boundary::header::check(
        crate_dir,
        "empmix_engine.h",
        "EMPMIX_ENGINE",
        env!("CARGO_PKG_VERSION"),
    );
    assert_eq!(checked, Ok(()));
}

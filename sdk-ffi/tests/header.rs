//! The committed header `include/empmix.h` is exactly what the pinned cbindgen generates from
//! the source. After a deliberate ABI change: `UPDATE_HEADER=1 cargo test -p empmix-ffi --test header`.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "a test fails loudly on an unexpected error")]

use std::path::Path;

#[test]
fn committed_header_matches_the_source() {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut config = cbindgen::Config::from_file(crate_dir.join("cbindgen.toml")).unwrap();
    let version = env!("CARGO_PKG_VERSION");
    let mut parts = version.split('.');
    let mut part = || parts.next().unwrap_or("0").to_string();
    let (major, minor, patch) = (part(), part(), part());
    config.after_includes = Some(format!(
        "\n#define EMPMIX_VERSION \"{version}\"\n#define EMPMIX_VERSION_MAJOR {major}\n\
         #define EMPMIX_VERSION_MINOR {minor}\n#define EMPMIX_VERSION_PATCH {patch}\n"
    ));
    // `EmpmixResult` is the core's `ErrorCode` re-exported; cbindgen reads it from this
    // generated source, so the C names, numbers and comments come from the core's list.
    let codes = tempfile::tempdir().unwrap();
    let codes_rs = codes.path().join("codes.rs");
    std::fs::write(&codes_rs, result_enum_source()).unwrap();
    let mut generated = Vec::new();
    cbindgen::Builder::new()
        .with_config(config)
        .with_src(&codes_rs)
        // cbindgen follows `mod` items from the crate root.
        .with_src(crate_dir.join("src/lib.rs"))
        .generate()
        .unwrap()
        .write(&mut generated);
    let generated = String::from_utf8(generated).unwrap();
    let path = crate_dir.join("include/empmix.h");
    if std::env::var_os("UPDATE_HEADER").is_some() {
        std::fs::write(&path, &generated).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "include/empmix.h is out of date with the source: run UPDATE_HEADER=1 cargo test -p empmix-ffi --test header"
    );
}

/// `EmpmixResult` as Rust source for cbindgen, from `empmix_core::ErrorCode::ALL`:
/// `EmpmixOk`, `EmpmixErr<Name>` (C: `EMPMIX_OK`, `EMPMIX_ERR_<NAME>`), with the core's docs.
fn result_enum_source() -> String {
    use empmix_core::ErrorCode;
    let mut out = String::from(
        "/// The result of every call. Values never change meaning and are never reused: new codes are\n\
         /// added at the end.\n#[repr(u32)]\npub enum EmpmixResult {\n",
    );
    for code in ErrorCode::ALL {
        for line in code.doc().lines() {
            out.push_str(&format!("    ///{line}\n"));
        }
        let camel: String = code.name().split('_').map(|w| w[..1].to_ascii_uppercase() + &w[1..]).collect();
        let name = if *code == ErrorCode::Ok { "EmpmixOk".to_string() } else { format!("EmpmixErr{camel}") };
        out.push_str(&format!("    {name} = {},\n", *code as u32));
    }
    out.push_str("}\n");
    out
}

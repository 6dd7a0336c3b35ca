//! The header generator both libraries' drift tests run: the pinned cbindgen over the library's
//! source and this crate's, with the library's `cbindgen.toml`, its version defines, and
//! `EmpmixResult` written out from [`empmix_core::ErrorCode::ALL`].

use std::path::Path;

/// Generates the header of the library in `crate_dir` (its `cbindgen.toml` and `src/lib.rs`),
/// with `<version_prefix>_VERSION`, `_MAJOR`, `_MINOR` and `_PATCH` defines for `version`.
pub fn generate(crate_dir: &Path, version_prefix: &str, version: &str) -> Result<String, String> {
    let mut config =
        cbindgen::Config::from_file(crate_dir.join("cbindgen.toml")).map_err(|e| e.to_string())?;
    let mut parts = version.split('.');
    let mut part = || parts.next().unwrap_or("0").to_string();
    let (major, minor, patch) = (part(), part(), part());
    config.after_includes = Some(format!(
        "\n#define {version_prefix}_VERSION \"{version}\"\n#define {version_prefix}_VERSION_MAJOR {major}\n\
         #define {version_prefix}_VERSION_MINOR {minor}\n#define {version_prefix}_VERSION_PATCH {patch}\n"
    ));
    // `EmpmixResult` is the core's `ErrorCode` re-exported; cbindgen reads it from this
    // generated source, so the C names, numbers and comments come from the core's list.
    let codes = tempfile::tempdir().map_err(|e| e.to_string())?;
    let codes_rs = codes.path().join("codes.rs");
    std::fs::write(&codes_rs, result_enum_source()).map_err(|e| e.to_string())?;
    let mut generated = Vec::new();
    cbindgen::Builder::new()
        .with_config(config)
        .with_src(&codes_rs)
        // The boundary's shared types (`EmpmixStats`).
        .with_src(Path::new(env!("CARGO_MANIFEST_DIR")).join("src/lib.rs"))
        // cbindgen follows `mod` items from the crate root.
        .with_src(crate_dir.join("src/lib.rs"))
        .generate()
        .map_err(|e| e.to_string())?
        .write(&mut generated);
    String::from_utf8(generated).map_err(|e| e.to_string())
}

/// Compares the committed header `crate_dir/include/<file>` with [`generate`]'s output;
/// with `UPDATE_HEADER` set in the environment, rewrites it first. `Err` says what to run.
pub fn check(crate_dir: &Path, file: &str, version_prefix: &str, version: &str) -> Result<(), String> {
    let generated = generate(crate_dir, version_prefix, version)?;
    let path = crate_dir.join("include").join(file);
    if std::env::var_os("UPDATE_HEADER").is_some() {
        std::fs::write(&path, &generated).map_err(|e| e.to_string())?;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    if committed == generated {
        Ok(())
    } else {
        Err(format!(
            "include/{file} is out of date with the source: run UPDATE_HEADER=1 cargo test --test header"
        ))
    }
}

/// `EmpmixResult` as Rust source for cbindgen, from `empmix_core::ErrorCode::ALL`:
/// `EmpmixOk`, `EmpmixErr<Name>` (C: `EMPMIX_OK`, `EMPMIX_ERR_<NAME>`), with the core's docs.
pub fn result_enum_source() -> String {
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

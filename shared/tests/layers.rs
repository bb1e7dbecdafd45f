//! The domain and the use cases know no transport, no JSON values, no AWS SDK and no Lambda:
//! this fails when one of them names such a crate (or reaches into the layers around them).

use std::path::{Path, PathBuf};

/// Crates and modules the inner layers must not use.
const FORBIDDEN: &[&str] = &[
    "http::",
    "hyper",
    "serde_json::Value",
    "serde_json::Map",
    "aws_sdk_",
    "aws_config",
    "aws_smithy",
    "lambda_runtime",
    "lambda_http",
    "crate::api",
    "crate::store::dynamodb",
    "crate::config",
];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The code of a file without its `#[cfg(test)]` module (tests may use anything).
fn production_code(text: &str) -> &str {
    text.split("#[cfg(test)]").next().unwrap_or(text)
}

fn violations(dir: &Path) -> Vec<String> {
    violations_of(dir, FORBIDDEN)
}

/// Every production line under `dir` (a folder or one file) that names one of `forbidden`.
fn violations_of(dir: &Path, forbidden: &[&str]) -> Vec<String> {
    let mut files = Vec::new();
    if dir.is_file() {
        files.push(dir.to_path_buf());
    } else {
        rust_files(dir, &mut files);
    }
    assert!(!files.is_empty(), "no sources under {}", dir.display());
    let mut found = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        for (n, line) in production_code(&text).lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            for bad in forbidden {
                if code.contains(bad) {
                    found.push(format!(
                        "{}:{}: {bad}: {}",
                        file.display(),
                        n + 1,
                        line.trim()
                    ));
                }
            }
        }
    }
    found
}

/// The domain and the use cases are the `callbridge-core` crate: the compiler keeps out what
/// its manifest does not depend on. This fails if the manifest gains a transport, AWS, HTTP,
/// JSON or Lambda crate, or this crate's adapters; and the text check stays as a second net.
#[test]
fn domain_and_use_cases_stay_free_of_transport_storage_sdks_and_json() {
    let core = Path::new(env!("CARGO_MANIFEST_DIR")).join("core");
    let manifest = std::fs::read_to_string(core.join("Cargo.toml")).unwrap();
    let deps = manifest
        .split("[dependencies]")
        .nth(1)
        .expect("a [dependencies] section");
    for crate_name in [
        "http",
        "hyper",
        "serde_json",
        "aws-",
        "lambda_",
        "callbridge",
        "jsonwebtoken",
        "rustls",
        "reqwest",
    ] {
        assert!(
            !deps.lines().any(|l| l.trim_start().starts_with(crate_name)),
            "callbridge-core depends on {crate_name}:\n{deps}"
        );
    }
    let src = core.join("src");
    let found = violations(&src);
    assert!(found.is_empty(), "layering broken:\n{}", found.join("\n"));
}

/// The ring points one way: configuration knows the adapters' settings and hands them down, so
/// no adapter reads configuration; telemetry records what the adapters classify, so it knows no
/// adapter.
#[test]
fn adapters_never_import_config_and_telemetry_imports_no_adapter() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut found = Vec::new();
    for adapter in ["providers", "chat", "store", "http_client.rs"] {
        found.extend(violations_of(&src.join(adapter), &["crate::config"]));
    }
    found.extend(violations_of(
        &src.join("telemetry.rs"),
        &[
            "crate::providers",
            "crate::chat",
            "crate::store",
            "crate::api",
            "crate::http_client",
            "aws_",
        ],
    ));
    assert!(
        found.is_empty(),
        "the ring points the wrong way:\n{}",
        found.join("\n")
    );
}

#[test]
fn the_check_finds_what_it_looks_for() {
    let dir = std::env::temp_dir().join(format!("callbridge-layers-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("inner")).unwrap();
    std::fs::write(
        dir.join("inner/bad.rs"),
        "use http::StatusCode; // the import\nfn f(v: serde_json::Value) {}\n#[cfg(test)]\nmod t { use hyper; }\n",
    )
    .unwrap();
    let found = violations(&dir);
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(found.len(), 2, "{found:#?}");
    assert!(found[0].contains("http::") && found[1].contains("serde_json::Value"));
}

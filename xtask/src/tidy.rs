//! `cargo xtask tidy`: the architecture invariants, checked from `cargo metadata` and the
//! sources. Also runs as a `#[test]`, so `cargo test` alone catches a broken invariant.

use serde_json::Value;
use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;

/// The client's core crates, bottom up: each may depend on those before it in this list (auth
/// and graph, side by side, not on each other), and the layers above on all four.
const CORE: [&str; 4] = [
    "igdisplay-model",
    "igdisplay-http",
    "igdisplay-auth",
    "igdisplay-graph",
];

/// Which workspace crates a library crate may depend on (normal dependencies); `None` for
/// packages not listed (tests, examples, xtask), which may depend on any library crate.
fn allowed_workspace_deps(name: &str) -> Option<Vec<&'static str>> {
    let (core, above): (usize, &[&str]) = match name {
        // The oracle shares no code with the client it tests.
        "igdisplay-model" | "igdisplay-mock" => (0, &[]),
        // The transport meets Instagram's error classes once (`From<ErrorClass> for
        // ServerVerdict`).
        "igdisplay-http" => (1, &[]),
        "igdisplay-auth" | "igdisplay-graph" => (2, &[]),
        // Above auth and graph: the SQL stores (auth and graph never gain a database
        // dependency) and the media mirror (only it takes an image dependency; it uses auth
        // for the one temporary-file writer, `PrivateFile`, never for tokens).
        "igdisplay-store" | "igdisplay-mirror" => (4, &[]),
        "igdisplay" => (4, &["igdisplay-mock", "igdisplay-store"]),
        // The feed service: the facade (one pacer per app), the store and the mirror.
        "igdisplay-feeds" => (4, &["igdisplay", "igdisplay-store", "igdisplay-mirror"]),
        "igdisplay-cli" => (
            4,
            &[
                "igdisplay",
                "igdisplay-feeds",
                "igdisplay-mirror",
                "igdisplay-mock",
                "igdisplay-store",
            ],
        ),
        _ => return None,
    };
    Some(CORE[..core].iter().chain(above).copied().collect())
}

/// The only external crates the model may use: it is plain data (serde_path_to_error only
/// names where a body failed to decode).
const MODEL_EXTERNAL_DEPS: &[&str] = &["serde", "serde_json", "serde_path_to_error"];

/// Crates that are concrete HTTP stacks: only the transport crate and the top layers name them.
const CONCRETE_BACKENDS: &[&str] = &["reqwest", "hyper", "hyper-util", "hyper-rustls"];

/// The oracle shares no code with the system under test, even in its tests.
const MOCK_FORBIDDEN: &[&str] = &[
    "igdisplay-model",
    "igdisplay-auth",
    "igdisplay-graph",
    "igdisplay",
];

/// Runs every check and reports all violations at once.
pub(crate) fn run(root: &Path) -> Result<(), String> {
    let packages = workspace_packages(root)?;
    let mut problems = Vec::new();
    check_dependency_edges(&packages, &mut problems);
    for package in &packages {
        check_package_files(root, package, &mut problems);
    }
    check_one_place(root, &mut problems);
    check_clock_rule(root, &mut problems);
    check_snapshot_secrets(root, &mut problems);
    crate::fn_length::check(root, &mut problems);
    crate::named_tests::check(root, &mut problems);
    if problems.is_empty() {
        return Ok(());
    }
    let mut report = format!("{} architecture invariant(s) broken:", problems.len());
    for problem in &problems {
        let _ = write!(report, "\n  - {problem}");
    }
    Err(report)
}

/// One workspace package, as far as tidy (and the package check of `cargo xtask ci`) cares.
#[derive(Debug)]
pub(crate) struct Package {
    pub(crate) name: String,
    dir: std::path::PathBuf,
    deps: Vec<Dep>,
    /// Whether it may be published (no `publish = false`).
    pub(crate) publishable: bool,
}

#[derive(Debug)]
struct Dep {
    name: String,
    kind: DepKind,
    default_features: bool,
    features: Vec<String>,
}

#[derive(Debug, PartialEq, Eq)]
enum DepKind {
    Normal,
    Dev,
    Build,
}

pub(crate) fn workspace_packages(root: &Path) -> Result<Vec<Package>, String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let output = Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--no-deps", "--offline"])
        .current_dir(root)
        .output()
        .map_err(|e| format!("could not run cargo metadata: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "cargo metadata failed: {}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    let metadata: Value =
        serde_json::from_slice(&output.stdout).map_err(|e| format!("cargo metadata output: {e}"))?;
    let packages = metadata["packages"]
        .as_array()
        .ok_or("cargo metadata has no packages")?;
    Ok(packages.iter().map(package).collect())
}

fn package(value: &Value) -> Package {
    let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
    let manifest = text(&value["manifest_path"]);
    let deps = value["dependencies"]
        .as_array()
        .map(|deps| {
            deps.iter()
                .map(|d| Dep {
                    name: text(&d["name"]),
                    kind: match d["kind"].as_str() {
                        Some("dev") => DepKind::Dev,
                        Some("build") => DepKind::Build,
                        _ => DepKind::Normal,
                    },
                    default_features: d["uses_default_features"].as_bool().unwrap_or(true),
                    features: d["features"]
                        .as_array()
                        .map(|f| f.iter().map(text).collect())
                        .unwrap_or_default(),
                })
                .collect()
        })
        .unwrap_or_default();
    Package {
        name: text(&value["name"]),
        dir: Path::new(&manifest)
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default(),
        deps,
        // `publish = false` reads `[]` (no registry allowed); the default, `null`.
        publishable: value["publish"]
            .as_array()
            .is_none_or(|registries| !registries.is_empty()),
    }
}

fn is_workspace_crate(name: &str) -> bool {
    name == "igdisplay" || name.starts_with("igdisplay-")
}

fn check_dependency_edges(packages: &[Package], problems: &mut Vec<String>) {
    for package in packages {
        let name = package.name.as_str();
        let allowed = allowed_workspace_deps(name);
        for dep in &package.deps {
            let normal = dep.kind == DepKind::Normal;
            if dep.name == "igdisplay-cli" {
                problems.push(format!(
                    "{name} depends on igdisplay-cli: nothing may depend on the CLI"
                ));
            }
            if let Some(allowed) = &allowed
                && normal
                && is_workspace_crate(&dep.name)
                && !allowed.contains(&dep.name.as_str())
            {
                problems.push(format!(
                    "{name} depends on {}: allowed workspace dependencies are {allowed:?}",
                    dep.name
                ));
            }
            if name == "igdisplay-model" && normal && !MODEL_EXTERNAL_DEPS.contains(&dep.name.as_str()) {
                problems.push(format!(
                    "igdisplay-model depends on {}: the model crate may use only {MODEL_EXTERNAL_DEPS:?}",
                    dep.name
                ));
            }
            if matches!(name, "igdisplay-auth" | "igdisplay-graph") && normal {
                if CONCRETE_BACKENDS.contains(&dep.name.as_str()) {
                    problems.push(format!(
                        "{name} depends on {}: use the HttpBackend trait",
                        dep.name
                    ));
                }
                let backend_feature = dep.features.iter().any(|f| f == "reqwest" || f == "hyper");
                if dep.name == "igdisplay-http" && (dep.default_features || backend_feature) {
                    problems.push(format!(
                        "{name} enables a concrete backend of igdisplay-http: depend on it with \
                         default-features = false and no backend feature"
                    ));
                }
            }
            if name == "igdisplay-mock" && MOCK_FORBIDDEN.contains(&dep.name.as_str()) {
                problems.push(format!(
                    "igdisplay-mock depends on {} ({:?}): the oracle shares no code with the client",
                    dep.name, dep.kind
                ));
            }
        }
    }
}

/// Library crates need a README that is their crate doc, the workspace lints, and a `//!`
/// doc at the top of every module.
fn check_package_files(root: &Path, package: &Package, problems: &mut Vec<String>) {
    let relative = package.dir.strip_prefix(root).unwrap_or(&package.dir);
    let manifest = std::fs::read_to_string(package.dir.join("Cargo.toml")).unwrap_or_default();
    if !manifest.contains("[lints]") || !manifest.contains("workspace = true") {
        problems.push(format!(
            "{}: Cargo.toml lacks `[lints] workspace = true`",
            relative.display()
        ));
    }
    if is_workspace_crate(&package.name) && package.dir.join("src/lib.rs").exists() {
        if !package.dir.join("README.md").exists() {
            problems.push(format!("{}: no README.md", relative.display()));
        }
        let lib = std::fs::read_to_string(package.dir.join("src/lib.rs")).unwrap_or_default();
        if !lib.contains("#![doc = include_str!(\"../README.md\")]") {
            problems.push(format!(
                "{}/src/lib.rs: the crate doc must be the README (#![doc = include_str!(\"../README.md\")])",
                relative.display()
            ));
        }
    }
    let mut sources = Vec::new();
    for dir in ["src", "tests", "examples", "benches"] {
        collect_rust_files(&package.dir.join(dir), &mut sources);
    }
    for file in sources {
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        let first = text.lines().map(str::trim).find(|line| !line.is_empty());
        let documented = first.is_some_and(|line| line.starts_with("//!") || line.starts_with("#![doc"));
        if !documented {
            let shown = file.strip_prefix(root).unwrap_or(&file);
            problems.push(format!(
                "{}: the module has no `//!` doc at its top",
                shown.display()
            ));
        }
    }
}

/// Decisions that live in one place: a text that may appear in the sources of the workspace
/// crates and the examples only under the listed paths, and why (the bench builds its
/// hand-written baselines as it likes).
const ONE_PLACE: &[(&str, &[&str], &str)] = &[
    (
        "utf8_percent_encode",
        &["crates/igdisplay-http/src/query.rs", "crates/igdisplay-mock/"],
        "the client crates percent-encode only through igdisplay_http::encode_query (the mock keeps its own)",
    ),
    (
        "TransportErrorKind::",
        &["crates/igdisplay-http/", "crates/igdisplay-cli/"],
        "retry decisions on transport failures belong to igdisplay_http::classify",
    ),
    (
        "serde_path_to_error",
        &["crates/igdisplay-model/src/decode.rs"],
        "bodies are decoded only through igdisplay_model::decode",
    ),
    (
        "fn backoff(",
        &["crates/igdisplay-http/src/retry.rs"],
        "the one backoff is igdisplay_http::RetryPolicy::backoff",
    ),
    (
        "fn is_retryable(",
        &[
            "crates/igdisplay-auth/src/error.rs",
            "crates/igdisplay-graph/src/error.rs",
        ],
        "whether a failure is retried is igdisplay_http::classify's answer, given by the two send \
         loops' errors (TokenError, graph::Error); a third is_retryable would be a third rule",
    ),
    (
        ".try_spend()",
        &[
            "crates/igdisplay-http/src/send.rs",
            "crates/igdisplay-http/src/retry.rs",
        ],
        "requests are retried only by the one send loop (igdisplay_http::SendLoop), which spends \
         the shared retry budget: a loop of its own would retry outside it",
    ),
    (
        "routes::",
        &[
            "crates/igdisplay-mock/src/routes/",
            "crates/igdisplay-mock/src/server.rs",
            "crates/igdisplay-mock/src/handle.rs",
        ],
        "the mock's layers: the server and the handle call the routes; the world's state and the \
         leaf modules (fields, assets, headers, wire) never name them, so no import runs in a circle",
    ),
    (
        "ErrorClass::Transient =>",
        &["crates/igdisplay-http/src/retry.rs"],
        "an error class becomes a classifier verdict in one place, `From<ErrorClass> for \
         ServerVerdict`: a second match would let two crates retry differently",
    ),
    (
        "reqwest::Client",
        &["crates/igdisplay-http/src/"],
        "every request goes through an HttpBackend (its redirect policy, timeouts, address policy \
         and body cap): only the transport crate builds a reqwest client",
    ),
    (
        "hyper_util::client::legacy::Client",
        &["crates/igdisplay-http/src/", "crates/igdisplay-mock/"],
        "every request goes through an HttpBackend: only the transport crate builds a hyper client \
         (and the mock, which plays Instagram calling the app's callbacks)",
    ),
];

/// Like `ONE_PLACE`, and checked in the examples and the bench as well: what no program built
/// on igdisplay does beside the facade.
const FACADE_ONLY: &[(&str, &[&str], &str)] = &[
    (
        "Pacer::new(",
        &["crates/igdisplay/src/", "crates/igdisplay-graph/src/"],
        "one pacer per app: the facade makes it (Instagram::pacer, Instagram::fleet); a keeper or a \
         client built elsewhere would track the app's budget twice",
    ),
    (
        "Pacer::default()",
        &["crates/igdisplay/src/", "crates/igdisplay-graph/src/"],
        "one pacer per app: the facade makes it (Instagram::pacer, Instagram::fleet)",
    ),
];

/// Rules inside one crate: (the crate's sources, the text, where it may appear, why).
const ONE_PLACE_IN_CRATE: &[(&str, &str, &[&str], &str)] = &[(
    "crates/igdisplay-mock/src/",
    "serde_json::to_vec",
    &["crates/igdisplay-mock/src/wire.rs"],
    "the mock renders every answer one way: a serde_json::Value, made bytes by wire's render_json \
     or Reply::json (a 500 that says so when it cannot, never an empty 200)",
)];

/// Every `ONE_PLACE` text found outside its place in the `src/` of the workspace crates and
/// the examples, and every `FACADE_ONLY` one there and in the bench. A file's unit tests (from
/// its `#[cfg(test)] mod tests`) are left out: they may build and name what they check.
fn check_one_place(root: &Path, problems: &mut Vec<String>) {
    let mut bench = Vec::new();
    collect_rust_files(&root.join("bench/src"), &mut bench);
    bench.sort();
    let bench = bench.into_iter().map(|file| (shown(root, &file), file));
    for (shown, file) in library_sources(root).into_iter().chain(bench) {
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        let text = text
            .split("\n#[cfg(test)]\nmod tests {")
            .next()
            .unwrap_or_default();
        let rules = FACADE_ONLY
            .iter()
            .chain(ONE_PLACE.iter().filter(|_| !shown.starts_with("bench/")));
        let in_crate = ONE_PLACE_IN_CRATE
            .iter()
            .filter(|(scope, ..)| shown.starts_with(scope))
            .map(|(_, needle, allowed, why)| (needle, allowed, why));
        for (needle, allowed, why) in rules.map(|(n, a, w)| (n, a, w)).chain(in_crate) {
            if text.contains(needle) && !allowed.iter().any(|place| shown.starts_with(place)) {
                problems.push(format!("{shown}: uses `{needle}`: {why}"));
            }
        }
    }
}

/// The Rust files of the `src/` folders of the workspace crates and the examples, sorted,
/// each with its path from the root.
pub(crate) fn library_sources(root: &Path) -> Vec<(String, std::path::PathBuf)> {
    let mut files = Vec::new();
    for parent in ["crates", "examples"] {
        let Ok(packages) = std::fs::read_dir(root.join(parent)) else {
            continue;
        };
        for entry in packages.flatten() {
            collect_rust_files(&entry.path().join("src"), &mut files);
        }
    }
    files.sort();
    files.into_iter().map(|file| (shown(root, &file), file)).collect()
}

/// `file`'s path from `root`, `/`-separated, as problems name it.
fn shown(root: &Path, file: &Path) -> String {
    file.strip_prefix(root)
        .unwrap_or(file)
        .to_string_lossy()
        .replace('\\', "/")
}

/// `clippy.toml` keeps the real clock out of the library crates.
fn check_clock_rule(root: &Path, problems: &mut Vec<String>) {
    let config = std::fs::read_to_string(root.join("clippy.toml")).unwrap_or_default();
    for method in [
        "std::time::SystemTime::now",
        "std::time::Instant::now",
        "tokio::time::sleep",
        "tokio::time::timeout",
    ] {
        if !config.contains(&format!("\"{method}\"")) {
            problems.push(format!(
                "clippy.toml: `{method}` is not in disallowed-methods: time comes from the injected Clock"
            ));
        }
    }
}

/// Case 26: no snapshot holds a secret. The secrets are the word `CANARY` the tests put in
/// theirs, and every `access_token` of the sample bodies in `testdata/`; besides, a secret
/// wrapper or a sensitive query parameter in a snapshot must show the mask.
fn check_snapshot_secrets(root: &Path, problems: &mut Vec<String>) {
    let mut files = Vec::new();
    collect_files(root, &mut files);
    let mut secrets = vec!["CANARY".to_owned()];
    for file in files
        .iter()
        .filter(|f| f.components().any(|c| c.as_os_str() == "testdata"))
    {
        let text = std::fs::read_to_string(file).unwrap_or_default();
        for value in text.split("\"access_token\"").skip(1).filter_map(|rest| {
            let rest = rest
                .trim_start()
                .strip_prefix(':')?
                .trim_start()
                .strip_prefix('"')?;
            rest.split('"').next()
        }) {
            if value.len() >= 8 {
                secrets.push(value.to_owned());
            }
        }
    }
    let snapshots = files
        .iter()
        .filter(|f| f.to_string_lossy().ends_with(".snap") || f.to_string_lossy().ends_with(".snap.new"));
    for file in snapshots {
        let shown = file
            .strip_prefix(root)
            .unwrap_or(file)
            .to_string_lossy()
            .replace('\\', "/");
        let text = std::fs::read_to_string(file).unwrap_or_default();
        if secrets.iter().any(|secret| text.contains(secret.as_str())) {
            problems.push(format!("{shown}: holds a secret of the tests or of testdata/"));
        }
        for wrapper in ["AccessToken(", "AppSecret(", "AuthorizationCode(", "CsrfState("] {
            if text
                .split(wrapper)
                .skip(1)
                .any(|rest| !rest.starts_with("[redacted]"))
            {
                problems.push(format!("{shown}: `{wrapper}` without its mask"));
            }
        }
        for name in [
            "access_token=",
            "client_secret=",
            "code=",
            "state=",
            "fb_exchange_token=",
        ] {
            let leaked = text
                .split(name)
                .skip(1)
                .any(|rest| !rest.starts_with("[redacted]") && !rest.starts_with(['&', '"', ' ', '\n']));
            if leaked {
                problems.push(format!("{shown}: `{name}` without its mask"));
            }
        }
    }
}

/// Every file under `dir`, skipping build output, Git and npm folders.
fn collect_files(dir: &Path, found: &mut Vec<std::path::PathBuf>) {
    walk(dir, &["target", ".git", "node_modules"], &|_| true, found);
}

/// The Rust sources under `dir`: insta keeps snapshots in `snapshots/`, and test data folders
/// hold no modules.
pub(crate) fn collect_rust_files(dir: &Path, found: &mut Vec<std::path::PathBuf>) {
    let is_rust = |path: &Path| path.extension().is_some_and(|ext| ext == "rs");
    walk(dir, &["snapshots", "testdata", "fixtures"], &is_rust, found);
}

/// The files under `dir` that `keep` accepts, not entering folders named in `skip`.
fn walk(dir: &Path, skip: &[&str], keep: &dyn Fn(&Path) -> bool, found: &mut Vec<std::path::PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            if !entry
                .file_name()
                .to_str()
                .is_some_and(|name| skip.contains(&name))
            {
                walk(&path, skip, keep, found);
            }
        } else if keep(&path) {
            found.push(path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_workspace_is_tidy() {
        if let Err(report) = run(&crate::workspace_root()) {
            panic!("{report}");
        }
    }

    fn dep(name: &str, kind: DepKind) -> Dep {
        Dep {
            name: name.to_owned(),
            kind,
            default_features: true,
            features: Vec::new(),
        }
    }

    fn pkg(name: &str, deps: Vec<Dep>) -> Package {
        Package {
            name: name.to_owned(),
            dir: std::path::PathBuf::new(),
            deps,
            publishable: true,
        }
    }

    #[test]
    fn broken_edges_are_reported() {
        let packages = [
            pkg(
                "igdisplay-model",
                vec![dep("tokio", DepKind::Normal), dep("insta", DepKind::Dev)],
            ),
            pkg("igdisplay-http", vec![dep("igdisplay-auth", DepKind::Normal)]),
            pkg(
                "igdisplay-graph",
                vec![
                    dep("reqwest", DepKind::Normal),
                    dep("igdisplay-http", DepKind::Normal),
                ],
            ),
            pkg("igdisplay-mock", vec![dep("igdisplay-model", DepKind::Dev)]),
            pkg("igdisplay-tests", vec![dep("igdisplay-cli", DepKind::Normal)]),
        ];
        let mut problems = Vec::new();
        check_dependency_edges(&packages, &mut problems);
        let joined = problems.join("\n");
        assert_eq!(problems.len(), 6, "{joined}");
        for expected in [
            "igdisplay-model depends on tokio",
            "igdisplay-http depends on igdisplay-auth",
            "igdisplay-graph depends on reqwest",
            "igdisplay-graph enables a concrete backend",
            "igdisplay-mock depends on igdisplay-model (Dev)",
            "igdisplay-tests depends on igdisplay-cli",
        ] {
            assert!(joined.contains(expected), "missing {expected:?} in\n{joined}");
        }
    }
}

#[cfg(test)]
mod one_place_tests {
    use super::*;

    /// A scratch tree for one test.
    fn scratch(name: &str) -> std::path::PathBuf {
        std::env::temp_dir().join(format!("igdisplay-tidy-{name}-{}", std::process::id()))
    }

    /// Writes `text` as `dir/lib.rs` under `root`.
    fn write_lib(root: &Path, dir: &str, text: &str) {
        std::fs::create_dir_all(root.join(dir)).unwrap();
        std::fs::write(root.join(dir).join("lib.rs"), text).unwrap();
    }

    /// Asserts that there are as many problems as `expected` and that each starts with its
    /// prefix, in order.
    #[track_caller]
    fn assert_reported(problems: &[String], expected: &[&str]) {
        assert_eq!(problems.len(), expected.len(), "{problems:?}");
        for (problem, prefix) in problems.iter().zip(expected) {
            assert!(problem.starts_with(prefix), "{problems:?}");
        }
    }

    /// What the one-place rules report of the scratch tree `root`, which is then removed.
    fn one_place_problems(root: &Path) -> Vec<String> {
        let mut problems = Vec::new();
        check_one_place(root, &mut problems);
        std::fs::remove_dir_all(root).unwrap();
        problems
    }

    #[test]
    fn a_snapshot_with_a_secret_is_reported() {
        let root = scratch("snap");
        let data = root.join("crates/igdisplay-model/testdata");
        let snaps = root.join("crates/igdisplay-model/tests/snapshots");
        std::fs::create_dir_all(&data).unwrap();
        std::fs::create_dir_all(&snaps).unwrap();
        std::fs::write(
            data.join("token.json"),
            r#"{"access_token": "IGQVJSAMPLE1", "user_id": 1}"#,
        )
        .unwrap();
        std::fs::write(
            snaps.join("clean.snap"),
            "access_token: AccessToken([redacted]),\nuri: /me?access_token=[redacted]&fields=id\n",
        )
        .unwrap();
        std::fs::write(
            snaps.join("leak.snap"),
            "body: IGQVJSAMPLE1\nAppSecret(s3cr3t)\nuri: /x?code=AQD1\n",
        )
        .unwrap();
        let mut problems = Vec::new();
        check_snapshot_secrets(&root, &mut problems);
        std::fs::remove_dir_all(&root).unwrap();
        assert_eq!(problems.len(), 3, "{problems:?}");
        assert!(
            problems
                .iter()
                .all(|p| p.starts_with("crates/igdisplay-model/tests/snapshots/leak.snap")),
            "{problems:?}"
        );
    }

    #[test]
    fn a_second_encoder_or_a_missing_clock_rule_is_reported() {
        let root = scratch("encoder");
        write_lib(
            &root,
            "crates/igdisplay-graph/src",
            "//! x\nfn f() { utf8_percent_encode(); }\n",
        );
        // A client of its own, in an example or a crate; the bench may build its baselines.
        for dir in [
            "examples/web-gallery/src",
            "crates/igdisplay-mirror/src",
            "bench/src",
        ] {
            write_lib(&root, dir, "//! x\nfn f() { reqwest::Client::new(); }\n");
        }
        std::fs::write(root.join("clippy.toml"), "disallowed-methods = []\n").unwrap();
        let mut problems = Vec::new();
        check_one_place(&root, &mut problems);
        check_clock_rule(&root, &mut problems);
        std::fs::remove_dir_all(&root).unwrap();
        assert_reported(
            &problems[..3],
            &[
                "crates/igdisplay-graph/src/lib.rs: uses `utf8_percent_encode`",
                "crates/igdisplay-mirror/src/lib.rs: uses `reqwest::Client`",
                "examples/web-gallery/src/lib.rs: uses `reqwest::Client`",
            ],
        );
        assert_eq!(problems.len(), 7, "{problems:?}");
    }

    #[test]
    fn a_third_retry_rule_a_second_verdict_mapping_a_retry_loop_of_its_own_or_a_hyper_client_outside_the_transport_crate_is_reported()
     {
        let root = scratch("rules");
        let write = |dir: &str, text: &str| write_lib(&root, dir, text);
        write(
            "crates/igdisplay-store/src",
            "//! x\nfn is_retryable(&self) -> bool { true }\n",
        );
        write(
            "crates/igdisplay-graph/src",
            "//! x\nfn is_retryable(&self) -> bool { true }\n",
        );
        // A second mapping of error classes to verdicts, beside the one in the transport crate.
        write(
            "crates/igdisplay-auth/src",
            "//! x\nmatch class { ErrorClass::Transient => ServerVerdict::Transient }\n",
        );
        write(
            "crates/igdisplay-mirror/src",
            "//! x\ntype C = hyper_util::client::legacy::Client<C, B>;\n",
        );
        // The mock may build a hyper client; its state may not name the routes.
        write(
            "crates/igdisplay-mock/src",
            "//! x\ntype C = hyper_util::client::legacy::Client<C, B>;\n\
             struct World { cache: crate::routes::graph::FieldsCache }\n\
             fn body() -> Vec<u8> { serde_json::to_vec(&v).unwrap_or_default() }\n",
        );
        write(
            "crates/igdisplay-cli/src",
            "//! x\nfn again() { if budget.try_spend() { retry() } }\n",
        );
        // A unit test may name what it checks.
        write(
            "crates/igdisplay-model/src",
            "//! x\n#[cfg(test)]\nmod tests {\n    fn f() { budget.try_spend(); }\n}\n",
        );
        // The graph crate's lib.rs is not its error.rs: only that file may answer.
        assert_reported(
            &one_place_problems(&root),
            &[
                "crates/igdisplay-auth/src/lib.rs: uses `ErrorClass::Transient =>`",
                "crates/igdisplay-cli/src/lib.rs: uses `.try_spend()`",
                "crates/igdisplay-graph/src/lib.rs: uses `fn is_retryable(`",
                "crates/igdisplay-mirror/src/lib.rs: uses `hyper_util::client",
                "crates/igdisplay-mock/src/lib.rs: uses `routes::`",
                "crates/igdisplay-mock/src/lib.rs: uses `serde_json::to_vec`",
                "crates/igdisplay-store/src/lib.rs: uses `fn is_retryable(`",
            ],
        );
    }

    #[test]
    fn a_pacer_built_outside_the_facade_is_reported() {
        let root = scratch("pacer");
        // The store and the example may not; the facade may.
        for dir in [
            "crates/igdisplay-store/src",
            "examples/web-gallery/src",
            "crates/igdisplay/src",
        ] {
            write_lib(&root, dir, "//! x\nfn f() { Arc::new(Pacer::new(policy)); }\n");
        }
        assert_reported(
            &one_place_problems(&root),
            &[
                "crates/igdisplay-store/src/lib.rs: uses `Pacer::new(`",
                "examples/web-gallery/src/lib.rs",
            ],
        );
    }
}

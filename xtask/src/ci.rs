//! `cargo xtask ci`: the whole check, as CI runs it.

use std::path::Path;
use std::process::Command;

/// Runs every step in order; the first failure stops the run.
pub(crate) fn run(root: &Path) -> Result<(), String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let step = |title: &str, args: &[&str], env: &[(&str, &str)]| -> Result<(), String> {
        println!("\n==> {title}: cargo {}", args.join(" "));
        let mut command = Command::new(&cargo);
        command.args(args).envs(env.iter().copied()).current_dir(root);
        succeeds(&mut command, "cargo", || format!("step failed: {title}"))
    };
    let deny = [("RUSTDOCFLAGS", "-D warnings")];
    let tests = [("INSTA_UPDATE", "no"), ("CI", "true")];

    step("format", &["fmt", "--all", "--", "--check"], &[])?;
    // Every crate that would be published (those without `publish = false`), packaged and
    // built from its package alone, in one build in dependency order: a file a crate needs
    // but does not ship, a path dependency without a version, a manifest crates.io would
    // refuse fail here. In a target directory of its own, without debug info, removed after:
    // about 3 minutes on 2 cores, and none of the disk the rest of the run needs (it holds
    // about 1.8 GB while it runs).
    let packaged = std::env::temp_dir().join(format!("igdisplay-packages-{}", std::process::id()));
    let packaged_dir = packaged.to_string_lossy().into_owned();
    let unpublished: Vec<String> = crate::tidy::workspace_packages(root)?
        .into_iter()
        .filter(|package| !package.publishable)
        .map(|package| package.name)
        .collect();
    let mut args = vec!["package", "--workspace", "--locked"];
    for name in &unpublished {
        args.extend(["--exclude", name.as_str()]);
    }
    let result = step(
        "packages",
        &args,
        &[
            ("CARGO_TARGET_DIR", packaged_dir.as_str()),
            ("CARGO_PROFILE_DEV_DEBUG", "0"),
        ],
    );
    let _ = std::fs::remove_dir_all(&packaged);
    result?;
    // Clippy with every warning an error, on what `args` names.
    let clippy = |title: &str, args: &[&str]| {
        let mut all = vec!["clippy"];
        all.extend_from_slice(args);
        all.extend(["--", "-D", "warnings"]);
        step(title, &all, &[])
    };
    // --locked: the lock file is the one that was tested (case 75); the toolchain is the
    // declared rust-version, 1.95.
    clippy(
        "clippy, default features",
        &["--locked", "--workspace", "--all-targets"],
    )?;
    clippy(
        "clippy, all features",
        &["--workspace", "--all-targets", "--all-features"],
    )?;
    clippy(
        "transport crate without default features",
        &["--package", "igdisplay-http", "--no-default-features"],
    )?;
    for features in ["", "reqwest", "hyper"] {
        clippy(
            &format!("the facade with only `{features}`"),
            &[
                "--package",
                "igdisplay",
                "--no-default-features",
                "--features",
                features,
            ],
        )?;
    }
    step(
        "docs",
        &["doc", "--workspace", "--no-deps", "--all-features"],
        &deny,
    )?;
    println!("\n==> tidy");
    crate::tidy::run(root)?;
    println!("tidy: ok");
    // deny.toml says why advisories are not part of it.
    step(
        "licences, bans and sources",
        &["deny", "check", "-D", "warnings", "bans", "licenses", "sources"],
        &[],
    )?;
    for example in examples(root) {
        step(
            &format!("example {example} against the mock"),
            &[
                "run",
                "--quiet",
                "--package",
                "igdisplay",
                "--features",
                "mock",
                "--example",
                &example,
            ],
            &[],
        )?;
    }
    step(
        "doc tests",
        &["test", "--workspace", "--all-features", "--doc"],
        &tests,
    )?;
    // Benchmarks never run here; a tiny debug round proves the harness still works.
    crate::bench::run(root, true, &[])?;
    step(
        "web example",
        &["build", "--quiet", "--package", "web-gallery"],
        &[],
    )?;
    // The SQL store's tests and the web example's two instances run against a PostgreSQL
    // cluster of their own, stopped after.
    println!("\n==> PostgreSQL: initdb and a server on loopback for the tests");
    let mut cluster = crate::postgres::Cluster::start(root)?;
    println!("postgres: {}", cluster.url);
    let gallery_database = cluster.create_database("igd_browser")?;
    browser_tests(root, &gallery_database)?;
    let bin_dir = cluster.bin_dir.to_string_lossy().into_owned();
    println!("\n==> an S3-compatible server on loopback for the mirror's object-storage tests");
    let s3 = crate::s3::S3Server::start(root)?;
    println!("s3: {}", s3.url);
    let with_postgres = [
        tests[0],
        tests[1],
        ("IGDISPLAY_TEST_POSTGRES", cluster.url.as_str()),
        ("IGDISPLAY_TEST_PG_BIN", bin_dir.as_str()),
        ("IGDISPLAY_REQUIRE_POSTGRES", "1"),
        ("IGDISPLAY_TEST_S3", s3.url.as_str()),
        ("IGDISPLAY_REQUIRE_S3", "1"),
    ];
    let result = if has_nextest(&cargo) {
        step(
            "tests (nextest)",
            &[
                "nextest",
                "run",
                "--workspace",
                "--all-features",
                "--no-fail-fast",
            ],
            &with_postgres,
        )
    } else {
        step(
            "tests (cargo test)",
            &[
                "test",
                "--workspace",
                "--all-features",
                "--lib",
                "--bins",
                "--tests",
                "--no-fail-fast",
            ],
            &with_postgres,
        )
    };
    drop(s3);
    drop(cluster);
    result?;
    // After the tests, whose build made the CLI's binary.
    widget_browser_tests(root)?;
    crate::fuzz::smoke(root)?;
    stale_snapshots(root)
}

/// The facade's examples (every `crates/igdisplay/examples/*.rs`), sorted.
fn examples(root: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(root.join("crates/igdisplay/examples"))
        .map(|entries| {
            entries
                .flatten()
                .filter_map(|e| e.file_name().to_str()?.strip_suffix(".rs").map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// The web example in headless Chromium (`node --test`, playwright-core), against its own
/// embedded mock; two instances of it share `database`. `.ci/run` installs Chromium and the
/// npm package.
fn browser_tests(root: &Path, database: &str) -> Result<(), String> {
    let e2e = root.join("examples/web-gallery/e2e");
    println!("\n==> browser tests: node --test (in {})", e2e.display());
    npm_ci(&e2e)?;
    let binary = root.join("target/debug/web-gallery");
    let screenshot = root.join("target/e2e/gallery.png");
    let mut node = Command::new("node");
    node.args(["--test", "--test-reporter=spec"])
        .env("WEB_GALLERY_BIN", binary)
        .env("GALLERY_SCREENSHOT", screenshot)
        .env("GALLERY_DATABASE_URL", database)
        .env("IGDISPLAY_REQUIRE_POSTGRES", "1")
        .current_dir(&e2e);
    succeeds(&mut node, "node", || {
        "the browser tests failed (is Chromium installed? `bash .ci/run` installs it)".to_owned()
    })
}

/// The feed service's widget in headless Chromium (`node --test`, playwright-core and
/// axe-core), against `igdisplay feeds serve` and `igdisplay mock serve` (the CLI's debug
/// binary). `.ci/run` installs Chromium and the npm packages.
fn widget_browser_tests(root: &Path) -> Result<(), String> {
    let e2e = root.join("crates/igdisplay-feeds/e2e");
    println!("\n==> widget browser tests: node --test (in {})", e2e.display());
    npm_ci(&e2e)?;
    let mut node = Command::new("node");
    node.args(["--test", "--test-reporter=spec"])
        .env("IGDISPLAY_BIN", root.join("target/debug/igdisplay"))
        .current_dir(&e2e);
    succeeds(&mut node, "node", || {
        "the widget's browser tests failed (is Chromium installed? `bash .ci/run` installs it)".to_owned()
    })
}

/// `npm ci` in `dir` when its packages are not installed yet.
fn npm_ci(dir: &Path) -> Result<(), String> {
    if dir.join("node_modules").exists() {
        return Ok(());
    }
    let mut command = Command::new("npm");
    command
        .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
        .current_dir(dir);
    succeeds(&mut command, "npm (install Node.js)", || {
        format!("npm ci failed in {}", dir.display())
    })
}

/// Runs `command` to its end: `Ok` when it succeeds, else `failed()` (with its status), or
/// that `program` could not be run.
fn succeeds(command: &mut Command, program: &str, failed: impl FnOnce() -> String) -> Result<(), String> {
    let status = command
        .status()
        .map_err(|e| format!("could not run {program}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{} ({status})", failed()))
    }
}

fn has_nextest(cargo: &str) -> bool {
    Command::new(cargo)
        .args(["nextest", "--version"])
        .output()
        .is_ok_and(|out| out.status.success())
}

/// Fails when a test run left `*.snap.new` or `*.pending-snap` files: a snapshot changed.
fn stale_snapshots(root: &Path) -> Result<(), String> {
    let mut stale = Vec::new();
    for dir in ["crates", "xtask", "tests", "examples"] {
        collect_stale(&root.join(dir), &mut stale);
    }
    if stale.is_empty() {
        return Ok(());
    }
    Err(format!(
        "stale insta snapshots (review with `cargo insta review`):\n  {}",
        stale.join("\n  ")
    ))
}

fn collect_stale(dir: &Path, found: &mut Vec<String>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if path.is_dir() {
            if name != "target" && name != "node_modules" {
                collect_stale(&path, found);
            }
        } else if name.ends_with(".snap.new") || name.ends_with(".pending-snap") {
            found.push(path.display().to_string());
        }
    }
}

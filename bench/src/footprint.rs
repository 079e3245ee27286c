//! Comparison 6: the crates in each library crate's dependency tree.

use crate::report::Report;
use std::process::Command;

/// 6. Crates in the dependency trees.
pub(crate) fn footprint(report: &mut Report) -> Result<(), String> {
    let count = |args: &[&str]| -> Result<(usize, String), String> {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
        let output = Command::new(cargo)
            .args(["tree", "-e", "normal", "--prefix", "none"])
            .args(args)
            .output()
            .map_err(|e| e.to_string())?;
        let text = String::from_utf8_lossy(&output.stdout);
        let mut names: Vec<String> = text
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                l.trim_end_matches(" (*)")
                    .split(" (")
                    .next()
                    .unwrap_or(l)
                    .to_owned()
            })
            .collect();
        names.sort();
        names.dedup();
        let external: Vec<String> = names
            .iter()
            .filter(|n| !n.starts_with("igdisplay"))
            .map(|n| n.split(' ').next().unwrap_or(n).to_owned())
            .collect();
        Ok((names.len(), external.join(", ")))
    };
    let (model, model_crates) = count(&["-p", "igdisplay-model"])?;
    let (http, _) = count(&["-p", "igdisplay-http", "--no-default-features"])?;
    let (http_reqwest, _) = count(&["-p", "igdisplay-http"])?;
    let (facade, _) = count(&["-p", "igdisplay"])?;
    let serde_only = model_crates.split(", ").all(|c| {
        [
            "serde",
            "serde_core",
            "serde_derive",
            "serde_json",
            "serde_path_to_error",
            "itoa",
            "memchr",
            "zmij",
            "ryu",
            "proc-macro2",
            "quote",
            "syn",
            "unicode-ident",
        ]
        .contains(&c)
    });
    report.verdict(
        "6. the model crate pulls in only serde, its JSON and its error paths",
        serde_only,
        format!("{model} crates"),
    );
    report.section(
        "6. Build footprint",
        "Crates in the normal dependency tree (`cargo tree -e normal`, each crate once, the crate itself included). \
         Goal: the model crate pulls in nothing beyond serde, its JSON and serde_path_to_error.",
        &["crate", "crates in the tree"],
        vec![
            vec!["igdisplay-model".to_owned(), format!("{model} ({model_crates})")],
            vec!["igdisplay-http, no default features".to_owned(), http.to_string()],
            vec!["igdisplay-http, default (reqwest)".to_owned(), http_reqwest.to_string()],
            vec!["igdisplay (facade, default features)".to_owned(), facade.to_string()],
        ],
    );
    Ok(())
}

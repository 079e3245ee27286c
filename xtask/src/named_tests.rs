//! The tests the documents name exist: `docs/reliability.md` and `docs/architecture.md` back
//! each claim with a test, and a test renamed or merged must not leave a claim behind it.

use std::collections::BTreeSet;
use std::path::Path;

/// The documents whose named tests are checked.
const DOCUMENTS: &[&str] = &["docs/reliability.md", "docs/architecture.md"];

/// How a code span names a test.
#[derive(Debug, PartialEq, Eq)]
enum Named<'a> {
    /// `package[::binary] [path::]name`: a function of that name.
    Exact(&'a str),
    /// `…tail`: a function whose name ends so (the document's short form for another test
    /// of the same file).
    Suffix(&'a str),
}

/// Every test the documents name that is no function of the workspace.
pub(crate) fn check(root: &Path, problems: &mut Vec<String>) {
    let functions = function_names(root);
    for document in DOCUMENTS {
        let text = std::fs::read_to_string(root.join(document)).unwrap_or_default();
        for span in code_spans(&text) {
            let found = match named_test(span) {
                None => continue,
                Some(Named::Exact(name)) => functions.contains(name),
                Some(Named::Suffix(tail)) => functions.iter().any(|f| f.ends_with(tail)),
            };
            if !found {
                problems.push(format!(
                    "{document}: names `{span}`, which is no function in the workspace: a claim \
                     must name the test that proves it"
                ));
            }
        }
    }
}

/// The code spans of a Markdown text, fenced blocks left out.
fn code_spans(text: &str) -> Vec<&str> {
    let mut spans = Vec::new();
    let mut fenced = false;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if !fenced {
            spans.extend(line.split('`').skip(1).step_by(2));
        }
    }
    spans
}

/// What `span` names, when it names a test.
fn named_test(span: &str) -> Option<Named<'_>> {
    let is_test_name = |name: &str| {
        name.len() >= 8
            && name.contains('_')
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    };
    if let Some(tail) = span.strip_prefix('…') {
        return is_test_name(tail).then_some(Named::Suffix(tail));
    }
    let (package, path) = span.split_once(' ')?;
    let package = package.split("::").next()?;
    let ours = package.starts_with("igdisplay") || package == "web-gallery" || package == "xtask";
    if !ours || path.contains(' ') {
        return None;
    }
    let name = path.rsplit("::").next()?;
    is_test_name(name).then_some(Named::Exact(name))
}

/// The name of every `fn` in the workspace's Rust files.
fn function_names(root: &Path) -> BTreeSet<String> {
    let mut files = Vec::new();
    for dir in ["crates", "examples", "tests", "xtask", "bench", "fuzz"] {
        crate::tidy::collect_rust_files(&root.join(dir), &mut files);
    }
    let mut names = BTreeSet::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        for (at, _) in text.match_indices("fn ") {
            let after = &text[at + 3..];
            let name: String = after
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                names.insert(name);
            }
        }
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_naming_tests_are_read_and_others_left_alone() {
        assert_eq!(
            named_test("igdisplay-cli::cli login::a_callback_with_another_state_keeps_the_pending_login"),
            Some(Named::Exact(
                "a_callback_with_another_state_keeps_the_pending_login"
            ))
        );
        assert_eq!(
            named_test("igdisplay-auth flow::tests::states_carry_256_bits_and_never_repeat"),
            Some(Named::Exact("states_carry_256_bits_and_never_repeat"))
        );
        assert_eq!(
            named_test("…the_rest_of_a_name"),
            Some(Named::Suffix("the_rest_of_a_name"))
        );
        for other in [
            "error_description",
            "igdisplay serve",
            "pacer::tests::*",
            "cargo xtask tidy",
        ] {
            assert_eq!(named_test(other), None, "{other}");
        }
    }

    #[test]
    fn a_document_naming_a_missing_test_is_reported() {
        let root = std::env::temp_dir().join(format!("igdisplay-tidy-named-{}", std::process::id()));
        std::fs::create_dir_all(root.join("docs")).unwrap();
        std::fs::create_dir_all(root.join("crates/igdisplay-x/tests")).unwrap();
        std::fs::write(
            root.join("crates/igdisplay-x/tests/it.rs"),
            "#[test]\nfn a_real_test_that_exists() {}\n",
        )
        .unwrap();
        std::fs::write(
            root.join("docs/reliability.md"),
            "| 1 | x | Tested | `igdisplay-x::it a_real_test_that_exists`, `…test_that_exists` |\n\
             | 2 | y | Tested | `igdisplay-x::it a_test_merged_into_a_table` |\n\
             ```\nigdisplay-x::it not_a_span_in_a_fence\n```\n",
        )
        .unwrap();
        let mut problems = Vec::new();
        check(&root, &mut problems);
        std::fs::remove_dir_all(&root).unwrap();
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0].contains("`igdisplay-x::it a_test_merged_into_a_table`"),
            "{problems:?}"
        );
    }
}

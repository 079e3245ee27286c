//! Tidy's function-length rule: no function in the sources of the workspace crates and the
//! examples (their tests aside) is longer than [`MAX_LINES`] lines, except those [`KNOWN`]
//! lists, which may not grow and leave the list once they are split.

use std::path::Path;
use syn::visit::Visit;

/// The longest a function's body may be, in lines, braces included.
pub(crate) const MAX_LINES: usize = 80;

/// Functions over the limit (`path::Type::name`, their lines), each to be split: tidy fails
/// when one grows, and when one is split but still listed. Empty: the ten over it when the
/// rule came were split the same day.
pub(crate) const KNOWN: &[(&str, usize)] = &[];

/// Every function over the limit, and every stale entry of [`KNOWN`], as problems.
pub(crate) fn check(root: &Path, problems: &mut Vec<String>) {
    let mut found = Vec::new();
    for (shown, file) in crate::tidy::library_sources(root) {
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        match syn::parse_file(&text) {
            Ok(parsed) => Finder {
                path: &shown,
                owner: None,
                found: &mut found,
            }
            .visit_file(&parsed),
            Err(error) => problems.push(format!("{shown}: does not parse for the length check: {error}")),
        }
    }
    problems.extend(judge(&found, KNOWN));
}

/// The problems among `found` (each function's key and length), given the `known` long ones.
fn judge(found: &[(String, usize)], known: &[(&str, usize)]) -> Vec<String> {
    let mut problems = Vec::new();
    for (key, lines) in found.iter().filter(|(_, lines)| *lines > MAX_LINES) {
        match known.iter().find(|(listed, _)| listed == key) {
            Some((_, was)) if lines <= was => {}
            Some((_, was)) => problems.push(format!(
                "{key}: {lines} lines, {was} when it was listed as too long: split it rather than grow it"
            )),
            None => problems.push(format!(
                "{key}: {lines} lines, over the {MAX_LINES} a function may have: split it"
            )),
        }
    }
    for (listed, _) in known {
        let still = found
            .iter()
            .any(|(key, lines)| key == listed && *lines > MAX_LINES);
        if !still {
            problems.push(format!(
                "{listed}: listed as too long but is not (split, renamed or gone): take it off KNOWN"
            ));
        }
    }
    problems
}

/// Collects `(path::Type::name, lines)` of every function with a body, outside `#[cfg(test)]`
/// modules and `#[test]` functions.
struct Finder<'a> {
    path: &'a str,
    /// The type of the `impl` or trait being walked.
    owner: Option<String>,
    found: &'a mut Vec<(String, usize)>,
}

impl Finder<'_> {
    fn note(&mut self, name: &syn::Ident, block: &syn::Block) {
        let open = block.brace_token.span.open().start().line;
        let close = block.brace_token.span.close().end().line;
        let owner = self
            .owner
            .as_deref()
            .map(|owner| format!("{owner}::"))
            .unwrap_or_default();
        self.found.push((
            format!("{}::{owner}{name}", self.path),
            close.saturating_sub(open) + 1,
        ));
    }
}

/// Whether `attrs` hold `#[test]` or `#[cfg(test)]`.
fn is_test(attrs: &[syn::Attribute]) -> bool {
    attrs.iter().any(|attr| {
        attr.path().is_ident("test")
            || (attr.path().is_ident("cfg")
                && attr.parse_args::<syn::Ident>().is_ok_and(|ident| ident == "test"))
    })
}

impl<'ast> Visit<'ast> for Finder<'_> {
    fn visit_item_mod(&mut self, item: &'ast syn::ItemMod) {
        if !is_test(&item.attrs) {
            syn::visit::visit_item_mod(self, item);
        }
    }

    fn visit_item_fn(&mut self, item: &'ast syn::ItemFn) {
        if !is_test(&item.attrs) {
            self.note(&item.sig.ident, &item.block);
            syn::visit::visit_item_fn(self, item);
        }
    }

    fn visit_item_impl(&mut self, item: &'ast syn::ItemImpl) {
        let owner = match &*item.self_ty {
            syn::Type::Path(path) => path.path.segments.last().map(|s| s.ident.to_string()),
            _ => None,
        };
        let outer = std::mem::replace(&mut self.owner, owner);
        syn::visit::visit_item_impl(self, item);
        self.owner = outer;
    }

    fn visit_impl_item_fn(&mut self, item: &'ast syn::ImplItemFn) {
        if !is_test(&item.attrs) {
            self.note(&item.sig.ident, &item.block);
            syn::visit::visit_impl_item_fn(self, item);
        }
    }

    fn visit_trait_item_fn(&mut self, item: &'ast syn::TraitItemFn) {
        if let Some(block) = &item.default {
            self.note(&item.sig.ident, block);
        }
        syn::visit::visit_trait_item_fn(self, item);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A long function is found with its owner and length, a test's is not, and a listed one
    /// may stay but not grow.
    #[test]
    fn a_long_function_is_reported_and_a_tests_is_not() {
        let body = "    let _ = 1;\n".repeat(MAX_LINES);
        let text = format!(
            "//! x\nstruct S;\nimpl S {{\n    fn long() {{\n{body}    }}\n    fn short() {{}}\n}}\n\
             #[cfg(test)]\nmod tests {{\n    fn long_test() {{\n{body}    }}\n}}\n"
        );
        let parsed = syn::parse_file(&text).unwrap();
        let mut found = Vec::new();
        Finder {
            path: "crates/x/src/lib.rs",
            owner: None,
            found: &mut found,
        }
        .visit_file(&parsed);
        assert_eq!(
            found,
            [
                ("crates/x/src/lib.rs::S::long".to_owned(), MAX_LINES + 2),
                ("crates/x/src/lib.rs::S::short".to_owned(), 1)
            ]
        );
        let problems = judge(&found, &[]);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0].starts_with("crates/x/src/lib.rs::S::long: 82 lines"),
            "{problems:?}"
        );
        assert!(
            judge(&found, &[("crates/x/src/lib.rs::S::long", 82)]).is_empty(),
            "listed"
        );
        let grew = judge(&found, &[("crates/x/src/lib.rs::S::long", 81)]);
        assert!(grew[0].contains("split it rather than grow it"), "{grew:?}");
        let stale = judge(&found, &[("crates/x/src/lib.rs::S::short", 90)]);
        assert_eq!(stale.len(), 2, "{stale:?}");
        assert!(stale[1].contains("take it off KNOWN"), "{stale:?}");
    }
}

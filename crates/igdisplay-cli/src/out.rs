//! Output: aligned tables for people, JSON for scripts.

use serde::Serialize;

/// Prints `value` as pretty JSON.
pub(crate) fn json(value: &impl Serialize) {
    match serde_json::to_string_pretty(value) {
        Ok(text) => println!("{text}"),
        Err(e) => eprintln!("igdisplay: cannot print JSON: {e}"),
    }
}

/// Prints rows under a header, each column as wide as its widest cell (the last unpadded).
pub(crate) fn table(header: &[&str], rows: &[Vec<String>]) {
    print_table(header, rows, Header::Shown);
}

/// Prints more rows of a table whose header is already printed (columns sized as `table`).
pub(crate) fn rows(header: &[&str], rows: &[Vec<String>]) {
    print_table(header, rows, Header::Omitted);
}

/// Whether a table prints its header line.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Header {
    Shown,
    Omitted,
}

fn print_table(header: &[&str], rows: &[Vec<String>], shown: Header) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(width) = widths.get_mut(i) {
                *width = (*width).max(cell.chars().count());
            }
        }
    }
    let line = |cells: Vec<&str>| {
        let last = cells.len().saturating_sub(1);
        let text: Vec<String> = cells
            .iter()
            .enumerate()
            .map(|(i, c)| {
                if i == last {
                    plain(c)
                } else {
                    format!("{:<width$}", plain(c), width = widths[i])
                }
            })
            .collect();
        println!("{}", text.join("  ").trim_end());
    };
    if shown == Header::Shown {
        line(header.to_vec());
    }
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
}

/// `@username (id)`, the username made plain: how a user is named wherever the CLI knows both.
pub(crate) fn handle(username: &str, id: &igdisplay::model::UserId) -> String {
    format!("@{} ({id})", plain(username))
}

/// `text` fit for a terminal: every control character (escape sequences that could retitle
/// the terminal, move the cursor or clear the screen included) shown as `�`. Captions and
/// names come from other people; JSON output escapes them already.
pub(crate) fn plain(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { '\u{FFFD}' } else { c })
        .collect()
}

/// `text` on one line, cut to `max` characters with an ellipsis.
pub(crate) fn short(text: &str, max: usize) -> String {
    let flat = plain(&text.replace(['\n', '\r'], " "));
    if flat.chars().count() <= max {
        return flat;
    }
    let cut: String = flat.chars().take(max.saturating_sub(1)).collect();
    format!("{cut}…")
}

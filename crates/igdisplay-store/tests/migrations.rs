//! The two dialects' migrations are written twice on purpose (sqlx runs a folder per
//! database, and the types differ: `BIGINT`/`INTEGER`, `BYTEA`/`BLOB`); this test keeps the
//! copies in step: the same files, and in each the same tables, columns, indexes and
//! statements, in the same order.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

/// What a migration declares, in order, without the types: `table name (col, col, …)`,
/// `index name`, `ALTER TABLE t ADD COLUMN c`, and any other statement whole.
fn outline(sql: &str) -> Vec<String> {
    let code: String = sql
        .lines()
        .map(|line| line.split("--").next().unwrap_or_default())
        .collect::<Vec<_>>()
        .join("\n");
    code.split(';')
        .map(str::trim)
        .filter(|statement| !statement.is_empty())
        .map(|statement| {
            let words: Vec<&str> = statement.split_whitespace().collect();
            let upper: Vec<String> = words.iter().take(3).map(|w| w.to_ascii_uppercase()).collect();
            match upper.iter().map(String::as_str).collect::<Vec<_>>()[..] {
                ["CREATE", "TABLE", ..] => {
                    let body = &statement[statement.find('(').unwrap() + 1..statement.rfind(')').unwrap()];
                    let columns: Vec<&str> = body
                        .split(",\n")
                        .filter_map(|column| column.split_whitespace().next())
                        .collect();
                    format!("table {} ({})", words[2], columns.join(", "))
                }
                ["CREATE", "INDEX", ..] | ["CREATE", "UNIQUE", ..] => {
                    let on = statement.to_ascii_uppercase().find(" ON ").unwrap();
                    format!("index {}", statement[..on].split_whitespace().last().unwrap())
                }
                // `ALTER TABLE t ADD COLUMN c <type>`: the column, not its type.
                ["ALTER", ..] => words.iter().take(6).copied().collect::<Vec<_>>().join(" "),
                _ => statement.to_owned(),
            }
        })
        .collect()
}

fn migrations(dialect: &str) -> Vec<(String, String)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("migrations")
        .join(dialect);
    let mut files: Vec<(String, String)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read_to_string(&path).unwrap())
        })
        .collect();
    files.sort();
    files
}

#[test]
fn both_dialects_declare_the_same_tables_columns_and_indexes_in_each_migration() {
    let postgres = migrations("postgres");
    let sqlite = migrations("sqlite");
    let names = |files: &[(String, String)]| files.iter().map(|f| f.0.clone()).collect::<Vec<_>>();
    assert_eq!(names(&postgres), names(&sqlite));
    for ((name, pg), (_, lite)) in postgres.iter().zip(&sqlite) {
        let (pg, lite) = (outline(pg), outline(lite));
        assert!(!pg.is_empty(), "{name} declares nothing");
        assert_eq!(pg, lite, "{name}");
    }
}

#[test]
fn the_outline_sees_a_column_missing_from_one_copy() {
    let one = "CREATE TABLE t (\n    a  TEXT NOT NULL,\n    b  BIGINT\n);\nCREATE INDEX t_a ON t (a);";
    let other = "CREATE TABLE t (\n    a  TEXT NOT NULL\n);\nCREATE INDEX t_a ON t (a);";
    assert_eq!(outline(one), ["table t (a, b)", "index t_a"]);
    let added = "ALTER TABLE t ADD COLUMN c BIGINT; INSERT INTO t (a) VALUES ('x')";
    assert_eq!(
        outline(added),
        ["ALTER TABLE t ADD COLUMN c", "INSERT INTO t (a) VALUES ('x')"]
    );
    assert_ne!(outline(one), outline(other));
}

//! The top-level README quotes the main table and the verdict of one committed report. A
//! quote edited by hand, or left behind when the report is regenerated, fails here: every
//! quoted line must stand, verbatim and in order, in the report the README links to.

use std::fs;
use std::path::Path;

const REPORT_LINK: &str = "([full report](";

#[test]
fn the_readme_quotes_its_linked_report_verbatim() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let readme = fs::read_to_string(root.join("README.md")).expect("README.md is readable");
    let at = readme
        .find(REPORT_LINK)
        .expect("README links the report it quotes");
    let rest = &readme[at + REPORT_LINK.len()..];
    let path = &rest[..rest.find(')').expect("the link is closed")];
    let report = fs::read_to_string(root.join(path)).unwrap_or_else(|e| panic!("{path}: {e}"));

    let quoted: Vec<&str> = rest
        .lines()
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|') || l.is_empty() || l.starts_with("> "))
        .filter(|l| !l.is_empty())
        .collect();
    assert!(
        quoted.len() >= 4,
        "expected a table and a verdict, got {quoted:?}"
    );
    assert!(
        quoted.iter().any(|l| l.starts_with("> ")),
        "the verdict is quoted"
    );

    let table: Vec<&str> = quoted
        .iter()
        .copied()
        .filter(|l| l.starts_with('|'))
        .collect();
    assert!(
        report.contains(&table.join("\n")),
        "README's table is not the one in {path}: re-copy it from the regenerated report"
    );
    for verdict in quoted.iter().filter_map(|l| l.strip_prefix("> ")) {
        assert!(
            report.contains(verdict),
            "README's verdict is not in {path}: {verdict}"
        );
    }
}

//! Number and text formatting for the reports: fixed precisions, so that rendering the same
//! JSON twice gives the same bytes, and nothing that breaks a markdown table.

/// Bytes in a MiB.
pub const MIB: f64 = 1024.0 * 1024.0;
/// Bytes in a GiB.
pub const GIB: f64 = MIB * 1024.0;

/// Three significant figures or so, never scientific notation.
pub fn num(x: f64) -> String {
    let a = x.abs();
    if a >= 100.0 {
        format!("{x:.0}")
    } else if a >= 10.0 {
        format!("{x:.1}")
    } else if a >= 1.0 {
        format!("{x:.2}")
    } else {
        format!("{x:.3}")
    }
}

/// Seconds, as [`num`].
pub fn secs(x: f64) -> String {
    num(x)
}

/// A ratio with its `×`.
pub fn ratio(x: f64) -> String {
    if x >= 100.0 {
        format!("{x:.0}×")
    } else if x >= 10.0 {
        format!("{x:.1}×")
    } else {
        format!("{x:.2}×")
    }
}

/// The cell of a figure that does not exist.
pub fn dash() -> String {
    "–".to_owned()
}

/// `yes` or `no`.
pub fn yes_no(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

/// The first 12 hex digits of a commit, keeping a `-dirty` suffix.
pub fn short_commit(commit: &str) -> String {
    let (hash, dirty) = commit.split_once('-').map_or((commit, ""), |(h, d)| (h, d));
    let short = hash.get(..12).unwrap_or(hash);
    if dirty.is_empty() {
        short.to_owned()
    } else {
        format!("{short}-{dirty}")
    }
}

/// Keeps free text from breaking a table row.
pub fn escape(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_keep_about_three_significant_figures() {
        assert_eq!(
            [num(123.4), num(12.34), num(1.234), num(0.1234)],
            ["123", "12.3", "1.23", "0.123"]
        );
        assert_eq!(
            [ratio(150.0), ratio(15.0), ratio(1.5)],
            ["150×", "15.0×", "1.50×"]
        );
    }

    #[test]
    fn commits_are_shortened_with_their_dirty_mark() {
        assert_eq!(short_commit("0123456789abcdef-dirty"), "0123456789ab-dirty");
        assert_eq!(escape("a|b\nc"), "a\\|b c");
    }
}

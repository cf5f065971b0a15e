//! Project automation: `cargo xtask compare` (filled in by its issue).
fn main() {}

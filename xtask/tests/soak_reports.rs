//! Every committed soak's report and charts are exactly what rendering its JSON gives, and
//! the files its report links to exist. A test that finds no soak to check fails.

use std::fs;
use std::path::PathBuf;

use xtask::export::soak::{chart_file, readme};
use xtask::export::{README_FILE, soak_chart};
use xtask::report;

fn results_dir() -> PathBuf {
    xtask::workspace_root().join("benches-results")
}

#[test]
fn every_committed_soak_renders_byte_for_byte_with_every_chart_it_links() {
    let soaks = report::soaks(&results_dir()).expect("benches-results is readable");
    assert!(
        !soaks.is_empty(),
        "no soak with a summary.json under {}: nothing would be checked",
        results_dir().display()
    );
    for (dir, summary) in &soaks {
        let base = results_dir().join(dir);
        let rerender = format!("run `cargo xtask soak --render benches-results/{dir}`");
        let committed = fs::read_to_string(base.join(README_FILE)).unwrap_or_default();
        let rendered = readme(summary);
        assert!(
            committed == rendered,
            "{dir}/{README_FILE} differs from its summary.json; {rerender}"
        );
        assert!(!summary.servers.is_empty(), "{dir} soaked no server");
        for server in &summary.servers {
            let file = chart_file(&server.name);
            assert!(
                rendered.contains(&format!("]({file})")),
                "{dir}'s report does not link {file}"
            );
            let committed = fs::read_to_string(base.join(&file))
                .unwrap_or_else(|e| panic!("{dir}/{file}: {e}; {rerender}"));
            let chart = soak_chart::svg(server, &summary.settings).expect("the chart renders");
            assert!(
                committed == chart,
                "{dir}/{file} differs from its summary.json; {rerender}"
            );
        }
    }
}

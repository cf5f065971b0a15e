//! Guards the crate's founding invariant: echo-core does no IO. It never opens a socket,
//! never sleeps, never reads the clock and never touches files; servers hand it bytes and
//! `now`. A change that breaks this fails here, with the offending line named.

use std::fs;
use std::path::Path;

const FORBIDDEN: &[&str] = &[
    "Instant::now",
    "SystemTime::now",
    "std::net",
    "std::fs",
    "std::thread",
    "thread::sleep",
    "std::io::stdin",
    "std::process",
    "tokio",
    "mio",
];

#[test]
fn echo_core_sources_never_do_io_sleep_or_read_the_clock() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut offences = Vec::new();
    let mut files = 0;
    for entry in fs::read_dir(&src).expect("src/ is readable") {
        let path = entry.expect("directory entry").path();
        let text = fs::read_to_string(&path).expect("source is UTF-8");
        files += 1;
        for (n, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or_default();
            for word in FORBIDDEN.iter().filter(|w| code.contains(*w)) {
                offences.push(format!(
                    "{}:{}: {word}: {}",
                    path.display(),
                    n + 1,
                    line.trim()
                ));
            }
        }
    }
    assert!(
        files >= 5,
        "expected echo-core's modules under {}",
        src.display()
    );
    assert!(
        offences.is_empty(),
        "echo-core must stay sans-IO:\n{}",
        offences.join("\n")
    );
}

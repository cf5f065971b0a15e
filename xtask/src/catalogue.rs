//! The catalogue: every server variant a study can run, one row each, and the one place that
//! says how it is started and what the report checks on it.
//!
//! The `--servers` help and its accepted names, the model label in every table, which rows the
//! issue's targets are checked on, and which row is the reference the others are compared
//! with all derive from [`CATALOGUE`]. A new variant (or a new model, with its own crate) is
//! one row here and nothing else in xtask.
//!
//! Every variant gets the same delay, delay kind and listen backlog, so that rows differ only
//! in their concurrency model. The backlog is passed explicitly even to the Python baselines,
//! whose library defaults (5 and 100) would otherwise measure the kernel's SYN retry timer.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use echo_core::DelayKind;

use crate::results::{Model, Summary};
use crate::run::server::{Launch, Ready, free_port};

/// One server variant: its name, its concurrency model, how it is started, and what it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    /// Name in tables and in `--servers`.
    pub name: &'static str,
    /// Its concurrency model, the label in every table and in `summary.json`. Variants of one
    /// model share it, and the verdict compares the best of each model.
    pub model: &'static str,
    /// Who wrote it, which decides what the report checks on it.
    pub side: Side,
    /// The program that runs it.
    pub program: Program,
    /// The arguments that make this variant, after the common ones.
    pub args: &'static [Arg],
    /// What runs a request's work, which decides what a blocking or CPU-bound request does
    /// to the others (the scenarios study's targets and its default rows).
    pub executor: Executor,
}

impl Entry {
    /// Whether compare and capacity run it when `--servers` names none. The offload rows do
    /// not: with an honest `wait` delay (what those studies measure) they are their loop's
    /// row with idle threads beside it, so they run where a delay blocks (scenarios) or by
    /// name.
    pub fn by_default(&self) -> bool {
        self.executor != Executor::Offload
    }
}

/// What runs a request's work: the property a `block` or `spin` delay tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Executor {
    /// A thread per connection, or a pool of them: a blocked request holds only its thread,
    /// and CPU-bound requests use every core.
    Threads,
    /// One event-loop thread runs every connection: a request that blocks or spins stops
    /// them all, so it serves about one such request per delay.
    OneLoop,
    /// Several loops or runtime workers, each running its share of the connections: a block
    /// stops one loop's share.
    Loops,
    /// An event loop that hands `block` and `spin` work to a bounded pool of threads, and
    /// keeps only the waits: the fix users reach for when a driver blocks.
    Offload,
}

/// Who wrote a variant, and so what its row is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// One of this project's servers: the targets are checked on its row. The
    /// event-loop targets (near the floor, faster than the reference, small per-connection
    /// memory) apply when it waits with an event loop rather than a thread.
    Rust {
        /// Whether its waits are timers in an event loop.
        event_loop: bool,
    },
    /// One of the article's servers, a reference row that is never checked. The one marked
    /// `reference` is what "× faster than" compares with: the article's asyncio server.
    Baseline {
        /// Whether this is the row every other is compared with.
        reference: bool,
    },
    /// A server given with `--external`: measured, never checked.
    External,
}

/// The program that runs a variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Program {
    /// A binary of this workspace, built by cargo: the package (and binary) name.
    Cargo(&'static str),
    /// A script under `baselines/`, run with python3.
    Python {
        /// The script's file name under `baselines/`.
        script: &'static str,
        /// A module beyond the standard library that it needs (`uvloop`); without it the row
        /// is skipped with the reason, so the project stays runnable on the standard library.
        needs_module: Option<&'static str>,
    },
}

/// One argument of a variant: fixed text, or a study setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arg {
    /// Given as written.
    Text(&'static str),
    /// [`Settings::pool_size`].
    PoolSize,
    /// [`Settings::workers`].
    Workers,
}

/// Threads of every offload row's pool (`--offload N`): the thread budget of threaded-pool's
/// default `--pool-size`, so that a `block` delay has as many threads to hold in every pooled
/// row. A pool of N carries at most N ÷ delay requests per second of a blocking delay (2560/s
/// at `block:100ms`); 64 would cap the offload rows at 640/s, below the rates at which the
/// loops are compared.
const OFFLOAD_THREADS: &str = "256";

const RUST_THREADS: Side = Side::Rust { event_loop: false };
const RUST_EVENT_LOOP: Side = Side::Rust { event_loop: true };

/// Every built-in variant, in table order.
pub const CATALOGUE: &[Entry] = &[
    Entry {
        name: "threaded",
        model: "threads",
        side: RUST_THREADS,
        program: Program::Cargo("server-threaded"),
        args: &[],
        executor: Executor::Threads,
    },
    Entry {
        name: "threaded-pool",
        model: "threads",
        side: RUST_THREADS,
        program: Program::Cargo("server-threaded"),
        // Shedding off: the studies measure how the pool's queue delays clients, and under
        // compare's burst a queued client waits about connections ÷ pool × delay (≈ 4 s at
        // 10000 and 256), near the 5 s default that would turn waiting into `ERR server busy`.
        args: &[
            Arg::Text("--pool"),
            Arg::PoolSize,
            Arg::Text("--queue-timeout"),
            Arg::Text("off"),
        ],
        executor: Executor::Threads,
    },
    Entry {
        name: "tokio-multi",
        model: "tokio",
        side: RUST_EVENT_LOOP,
        program: Program::Cargo("server-async"),
        args: &[
            Arg::Text("--flavor"),
            Arg::Text("multi"),
            Arg::Text("--workers"),
            Arg::Workers,
        ],
        executor: Executor::Loops,
    },
    Entry {
        name: "tokio-current",
        model: "tokio",
        side: RUST_EVENT_LOOP,
        program: Program::Cargo("server-async"),
        args: &[Arg::Text("--flavor"), Arg::Text("current")],
        executor: Executor::OneLoop,
    },
    // The fix for a blocking driver on asyncio's model: the single-threaded runtime with `block`
    // and `spin` delays on tokio's blocking pool. Current-thread on purpose: its one thread is
    // the loop a blocking call stalls, so the row shows what the pool fixes; the multi-thread
    // runtime would hide part of the stall behind its other workers.
    Entry {
        name: "tokio-offload",
        model: "tokio",
        side: RUST_EVENT_LOOP,
        program: Program::Cargo("server-async"),
        args: &[
            Arg::Text("--flavor"),
            Arg::Text("current"),
            Arg::Text("--offload"),
            Arg::Text(OFFLOAD_THREADS),
        ],
        executor: Executor::Offload,
    },
    Entry {
        name: "mio",
        model: "mio",
        side: RUST_EVENT_LOOP,
        program: Program::Cargo("server-mio"),
        args: &[Arg::Text("--loops"), Arg::Text("1")],
        executor: Executor::OneLoop,
    },
    Entry {
        name: "mio-2loops",
        model: "mio",
        side: RUST_EVENT_LOOP,
        program: Program::Cargo("server-mio"),
        args: &[Arg::Text("--loops"), Arg::Text("2")],
        executor: Executor::Loops,
    },
    // One loop with server-common's offload pool, as tokio-offload.
    Entry {
        name: "mio-offload",
        model: "mio",
        side: RUST_EVENT_LOOP,
        program: Program::Cargo("server-mio"),
        args: &[
            Arg::Text("--loops"),
            Arg::Text("1"),
            Arg::Text("--offload"),
            Arg::Text(OFFLOAD_THREADS),
        ],
        executor: Executor::Offload,
    },
    Entry {
        name: "uring",
        model: "uring",
        side: RUST_EVENT_LOOP,
        program: Program::Cargo("server-uring"),
        args: &[Arg::Text("--loops"), Arg::Text("1")],
        executor: Executor::OneLoop,
    },
    Entry {
        name: "uring-2loops",
        model: "uring",
        side: RUST_EVENT_LOOP,
        program: Program::Cargo("server-uring"),
        args: &[Arg::Text("--loops"), Arg::Text("2")],
        executor: Executor::Loops,
    },
    // One ring with the same offload pool as mio-offload (completions through the ring's poll
    // of the loop's eventfd).
    Entry {
        name: "uring-offload",
        model: "uring",
        side: RUST_EVENT_LOOP,
        program: Program::Cargo("server-uring"),
        args: &[
            Arg::Text("--loops"),
            Arg::Text("1"),
            Arg::Text("--offload"),
            Arg::Text(OFFLOAD_THREADS),
        ],
        executor: Executor::Offload,
    },
    Entry {
        name: "python-threaded",
        model: "python-threads",
        side: Side::Baseline { reference: false },
        program: Program::Python {
            script: "threaded_server.py",
            needs_module: None,
        },
        args: &[],
        executor: Executor::Threads,
    },
    // The article's own code path (a task, a coroutine, `asyncio.sleep` and a done callback
    // per request): the row every "× python-asyncio" figure divides by.
    Entry {
        name: "python-asyncio",
        model: "asyncio",
        side: Side::Baseline { reference: true },
        program: Program::Python {
            script: "asyncio_server.py",
            needs_module: None,
        },
        args: &[],
        executor: Executor::OneLoop,
    },
    // One `call_later` timer per request: cheaper than the article's style, so the cost of
    // that style is itself visible.
    Entry {
        name: "python-asyncio-timer",
        model: "asyncio-timer",
        side: Side::Baseline { reference: false },
        program: Program::Python {
            script: "asyncio_timer_server.py",
            needs_module: None,
        },
        args: &[],
        executor: Executor::OneLoop,
    },
    // The article's server with the usual fix for a blocking call in a coroutine: the call
    // awaited through `loop.run_in_executor` on a ThreadPoolExecutor. A model of its own, so
    // that the reference row stays the only `asyncio` one.
    Entry {
        name: "python-asyncio-offload",
        model: "asyncio-offload",
        side: Side::Baseline { reference: false },
        program: Program::Python {
            script: "asyncio_server.py",
            needs_module: None,
        },
        args: &[Arg::Text("--offload"), Arg::Text(OFFLOAD_THREADS)],
        executor: Executor::Offload,
    },
    // The article's server on uvloop, the strongest Python a reader would reach for.
    Entry {
        name: "python-uvloop",
        model: "uvloop",
        side: Side::Baseline { reference: false },
        program: Program::Python {
            script: "uvloop_server.py",
            needs_module: Some("uvloop"),
        },
        args: &[],
        executor: Executor::OneLoop,
    },
];

/// The model of a server given with `--external`.
pub const EXTERNAL_MODEL: &str = "external";

/// The model summaries of schema 1 gave both Python baselines, before they had a model each.
const LEGACY_BASELINE_MODEL: &str = "python-baseline";

/// The names `--servers` accepts, in table order.
pub fn names() -> impl Iterator<Item = &'static str> {
    CATALOGUE.iter().map(|e| e.name)
}

/// The names compare and capacity run when `--servers` names none ([`Entry::by_default`]),
/// in table order.
pub fn default_names() -> impl Iterator<Item = &'static str> {
    CATALOGUE.iter().filter(|e| e.by_default()).map(|e| e.name)
}

/// The entry called `name`.
///
/// # Errors
/// When `name` is not in the catalogue; the message lists the known names.
pub fn entry(name: &str) -> anyhow::Result<&'static Entry> {
    CATALOGUE.iter().find(|e| e.name == name).with_context(|| {
        format!(
            "unknown server variant `{name}`; known: {}",
            names().collect::<Vec<_>>().join(", ")
        )
    })
}

/// What a row of `model` is: the side of the catalogue rows of that model, or
/// [`Side::External`] for a model the catalogue does not have.
pub fn side_of(model: &Model) -> Side {
    CATALOGUE
        .iter()
        .find(|e| e.model == model.as_str())
        .map_or(Side::External, |e| e.side)
}

/// The model every other row is compared with (the article's asyncio server), if any.
pub fn reference_model() -> Option<Model> {
    CATALOGUE
        .iter()
        .find(|e| e.side == Side::Baseline { reference: true })
        .map(|e| Model::new(e.model))
}

/// Gives the rows of a schema-1 summary, which labelled both Python baselines
/// `python-baseline`, the model their catalogue row has now; every other row is left alone.
pub fn upgrade_legacy_models(summary: &mut Summary) {
    let legacy = summary
        .rows
        .iter_mut()
        .filter(|row| row.model.as_str() == LEGACY_BASELINE_MODEL);
    for row in legacy {
        if let Ok(entry) = entry(&row.server) {
            row.model = Model::new(entry.model);
        }
    }
}

/// How a variant is started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recipe {
    /// A catalogue row.
    Builtin(&'static Entry),
    /// A user's command, split on white space, with `{port}`, `{delay}` (the spec) and
    /// `{delay_ms}` (its mean).
    External {
        /// The command template.
        template: String,
    },
}

/// One server to measure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Variant {
    /// Name in tables and in `--servers`.
    pub name: String,
    /// Its concurrency model.
    pub model: Model,
    /// How to start it.
    pub recipe: Recipe,
}

/// What every variant is started with.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Workspace root (for `baselines/`).
    pub root: PathBuf,
    /// Where the release binaries are.
    pub bin_dir: PathBuf,
    /// Delay kind for every server.
    pub delay_kind: DelayKind,
    /// Listen backlog for every server.
    pub backlog: u32,
    /// Threads of `threaded-pool`.
    pub pool_size: u32,
    /// Workers of `tokio-multi`: the machine's cores.
    pub workers: u32,
}

impl Settings {
    /// `text` (a command line) as a user of a fresh clone types it from the repository root:
    /// the release directory becomes `target/release` and the root itself goes, so committed
    /// records name no directory of the machine they ran on.
    pub fn for_the_record(&self, text: &str) -> String {
        let bin = format!("{}/", self.bin_dir.display());
        let root = format!("{}/", self.root.display());
        text.replace(&bin, "target/release/").replace(&root, "")
    }
}

/// The built-in variant called `name`.
///
/// # Errors
/// When `name` is not in the catalogue.
pub fn builtin(name: &str) -> anyhow::Result<Variant> {
    let entry = entry(name)?;
    Ok(Variant {
        name: entry.name.to_owned(),
        model: Model::new(entry.model),
        recipe: Recipe::Builtin(entry),
    })
}

/// Parses `--external NAME=COMMAND`.
///
/// # Errors
/// When there is no `=`, the name is empty or taken, or the command has no `{port}`.
pub fn external(spec: &str) -> anyhow::Result<Variant> {
    let (name, template) = spec
        .split_once('=')
        .with_context(|| format!("--external `{spec}` is not NAME=COMMAND"))?;
    let name = name.trim();
    if name.is_empty() || entry(name).is_ok() {
        bail!("--external `{spec}`: the name must be new and not empty");
    }
    if !template.contains("{port}") {
        bail!("--external `{spec}`: the command needs a {{port}} placeholder");
    }
    Ok(Variant {
        name: name.to_owned(),
        model: Model::new(EXTERNAL_MODEL),
        recipe: Recipe::External {
            template: template.trim().to_owned(),
        },
    })
}

impl Variant {
    /// The catalogue row it comes from; `None` for an external server.
    pub fn entry(&self) -> Option<&'static Entry> {
        match self.recipe {
            Recipe::Builtin(entry) => Some(entry),
            Recipe::External { .. } => None,
        }
    }

    /// The cargo package it needs built, if any.
    pub fn package(&self) -> Option<&'static str> {
        match self.entry()?.program {
            Program::Cargo(package) => Some(package),
            Program::Python { .. } => None,
        }
    }

    /// The module beyond python3's standard library that it needs, if any.
    pub fn python_module(&self) -> Option<&'static str> {
        match self.entry()?.program {
            Program::Python { needs_module, .. } => needs_module,
            Program::Cargo(_) => None,
        }
    }

    /// Whether it is one of the article's Python servers.
    pub fn is_baseline(&self) -> bool {
        self.entry()
            .is_some_and(|e| matches!(e.side, Side::Baseline { .. }))
    }

    /// Whether its delay can be set, so that a zero-delay run means something.
    pub fn controls_delay(&self) -> bool {
        match &self.recipe {
            Recipe::External { template } => template.contains("{delay"),
            Recipe::Builtin(_) => true,
        }
    }

    /// The command for one run at `delay`, given as its spec (`--delay spin:2ms+wait:100ms`):
    /// every server and baseline reads the recipe grammar itself.
    ///
    /// # Errors
    /// When no free port can be found for an external server.
    pub fn launch(&self, settings: &Settings, delay: &echo_core::Recipe) -> anyhow::Result<Launch> {
        let entry = match &self.recipe {
            Recipe::Builtin(entry) => entry,
            Recipe::External { template } => return external_launch(&self.name, template, delay),
        };
        let mut args = Vec::new();
        let program = match entry.program {
            Program::Cargo(package) => settings.bin_dir.join(package),
            Program::Python { script, .. } => {
                let path = settings.root.join("baselines").join(script);
                args.push(path.display().to_string());
                PathBuf::from("python3")
            }
        };
        let delay = delay.to_string();
        args.extend(["--host", "127.0.0.1", "--port", "0", "--delay", &delay].map(String::from));
        args.extend(["--backlog".to_owned(), settings.backlog.to_string()]);
        let mut envs = Vec::new();
        args.extend(["--delay-kind".to_owned(), settings.delay_kind.to_string()]);
        if let Program::Python { .. } = entry.program {
            // Keeps baselines/ free of __pycache__ litter.
            envs.push(("PYTHONDONTWRITEBYTECODE".to_owned(), "1".to_owned()));
        }
        args.extend(entry.args.iter().map(|arg| match arg {
            Arg::Text(text) => (*text).to_owned(),
            Arg::PoolSize => settings.pool_size.to_string(),
            Arg::Workers => settings.workers.to_string(),
        }));
        Ok(Launch {
            name: self.name.clone(),
            program,
            args,
            envs,
            ready: Ready::ListeningLine,
            ..Launch::default()
        })
    }
}

fn external_launch(
    name: &str,
    template: &str,
    delay: &echo_core::Recipe,
) -> anyhow::Result<Launch> {
    let port = free_port().context("cannot find a free port on 127.0.0.1")?;
    let delay_ms = delay.mean().as_millis().to_string();
    let delay = delay.to_string();
    let words: Vec<String> = template
        .split_whitespace()
        .map(|w| {
            w.replace("{port}", &port.to_string())
                .replace("{delay_ms}", &delay_ms)
                .replace("{delay}", &delay)
        })
        .collect();
    let (program, args) = words.split_first().context("empty external command")?;
    Ok(Launch {
        name: name.to_owned(),
        program: Path::new(program).to_path_buf(),
        args: args.to_vec(),
        envs: vec![],
        ready: Ready::Connect(SocketAddr::from(([127, 0, 0, 1], port))),
        ..Launch::default()
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use echo_core::DelayModel;

    use super::*;

    fn settings() -> Settings {
        Settings {
            root: PathBuf::from("/repo"),
            bin_dir: PathBuf::from("/target/release"),
            delay_kind: DelayKind::Wait,
            backlog: 4096,
            pool_size: 64,
            workers: 2,
        }
    }

    fn ms(n: u64) -> echo_core::Recipe {
        DelayModel::Fixed(Duration::from_millis(n)).into()
    }

    #[test]
    fn every_catalogue_variant_gets_port_zero_the_delay_and_the_backlog() {
        for name in names() {
            let launch = builtin(name)
                .and_then(|v| v.launch(&settings(), &ms(100)))
                .expect("catalogue variants launch");
            let line = launch.command_line();
            assert!(
                line.contains("--port 0 --delay 100ms --backlog 4096"),
                "{line}"
            );
            assert_eq!(launch.ready, Ready::ListeningLine);
        }
    }

    #[test]
    fn a_recipe_of_several_phases_is_given_to_every_variant_as_its_spec() {
        let recipe: echo_core::Recipe = "spin:2ms+wait:100ms".parse().expect("a recipe");
        for name in names() {
            let launch = builtin(name)
                .and_then(|v| v.launch(&settings(), &recipe))
                .expect("catalogue variants launch");
            let line = launch.command_line();
            assert!(line.contains("--delay spin:2ms+wait:100ms "), "{line}");
        }
        let external = external("go=./echo {port} {delay} {delay_ms}").expect("valid");
        let launch = external.launch(&settings(), &recipe).expect("launches");
        assert_eq!(launch.args[1..], ["spin:2ms+wait:100ms", "102"]);
    }

    #[test]
    fn variants_differ_by_their_own_flags() {
        let line = |name| {
            let variant = builtin(name).expect("known");
            variant
                .launch(&settings(), &ms(0))
                .expect("launches")
                .command_line()
        };
        assert!(line("threaded-pool").ends_with("--pool 64 --queue-timeout off"));
        assert!(line("tokio-multi").ends_with("--flavor multi --workers 2"));
        assert!(line("mio-2loops").ends_with("--loops 2"));
        assert!(line("uring-2loops").starts_with("/target/release/server-uring "));
        assert!(line("python-asyncio").starts_with("python3 /repo/baselines/asyncio_server.py"));
        assert!(line("mio").contains("--delay 0s "), "{}", line("mio"));
        assert!(line("tokio-offload").ends_with("--flavor current --offload 256"));
        assert!(line("mio-offload").ends_with("--loops 1 --offload 256"));
        assert!(line("uring-offload").ends_with("--loops 1 --offload 256"));
        assert!(
            line("python-asyncio-offload").starts_with("python3 /repo/baselines/asyncio_server.py")
                && line("python-asyncio-offload").ends_with("--offload 256")
        );
    }

    #[test]
    fn names_and_models_are_consistent_across_the_catalogue() {
        let mut seen: Vec<&str> = Vec::new();
        for entry in CATALOGUE {
            assert!(!seen.contains(&entry.name), "{} twice", entry.name);
            seen.push(entry.name);
            for other in CATALOGUE.iter().filter(|o| o.model == entry.model) {
                assert_eq!(other.side, entry.side, "model {} has one side", entry.model);
            }
            assert_ne!(entry.model, EXTERNAL_MODEL);
        }
        let references = CATALOGUE
            .iter()
            .filter(|e| e.side == Side::Baseline { reference: true })
            .count();
        assert_eq!(references, 1, "exactly one reference row");
        assert_eq!(reference_model(), Some(Model::new("asyncio")));
    }

    #[test]
    fn a_projects_row_runs_its_requests_on_threads_exactly_when_it_has_no_event_loop() {
        for entry in CATALOGUE {
            if let Side::Rust { event_loop } = entry.side {
                assert_eq!(
                    entry.executor == Executor::Threads,
                    !event_loop,
                    "{}",
                    entry.name
                );
            }
        }
        let one_loop: Vec<&str> = CATALOGUE
            .iter()
            .filter(|e| e.executor == Executor::OneLoop && matches!(e.side, Side::Rust { .. }))
            .map(|e| e.name)
            .collect();
        assert_eq!(one_loop, ["tokio-current", "mio", "uring"]);
    }

    #[test]
    fn only_the_uvloop_row_needs_a_module_beyond_the_standard_library() {
        let needing: Vec<(&str, &str)> = names()
            .filter_map(|name| {
                let variant = builtin(name).expect("a catalogue name");
                variant.python_module().map(|module| (name, module))
            })
            .collect();
        assert_eq!(needing, [("python-uvloop", "uvloop")]);
    }

    #[test]
    fn the_offload_rows_are_run_by_name_and_every_other_row_by_default() {
        let left_out: Vec<&str> = names()
            .filter(|n| !default_names().any(|d| d == *n))
            .collect();
        assert_eq!(
            left_out,
            [
                "tokio-offload",
                "mio-offload",
                "uring-offload",
                "python-asyncio-offload"
            ]
        );
    }

    #[test]
    fn a_model_outside_the_catalogue_is_external() {
        assert_eq!(side_of(&Model::new("nginx")), Side::External);
        assert_eq!(side_of(&Model::new("mio")), Side::Rust { event_loop: true });
    }

    #[test]
    fn an_unknown_variant_is_refused_with_the_known_names() {
        let error = builtin("nginx").expect_err("unknown");
        assert!(
            error.to_string().contains("`nginx`; known: threaded"),
            "{error}"
        );
    }

    #[test]
    fn records_name_paths_as_typed_from_the_repository_root() {
        let line = "/target/release/server-mio --port 0 --json /repo/benches-results/x.json";
        assert_eq!(
            settings().for_the_record(line),
            "target/release/server-mio --port 0 --json benches-results/x.json"
        );
    }

    #[test]
    fn an_external_command_gets_a_free_port_and_the_delay_in_its_placeholders() {
        let variant = external("go=./echo -p {port} -d {delay_ms}").expect("valid");
        assert!(variant.controls_delay());
        let launch = variant.launch(&settings(), &ms(100)).expect("launches");
        let Ready::Connect(addr) = launch.ready else {
            panic!("externals are polled with connects");
        };
        assert_eq!(
            launch.args,
            [
                "-p".to_owned(),
                addr.port().to_string(),
                "-d".to_owned(),
                "100".to_owned()
            ]
        );
    }

    #[test]
    fn an_external_command_without_a_port_placeholder_is_refused() {
        let error = external("go=./echo").expect_err("no {port}");
        assert!(
            error.to_string().contains("needs a {port} placeholder"),
            "{error}"
        );
        assert!(external("no equals sign").is_err());
        assert!(external("mio=./echo {port}").is_err(), "taken name");
        assert!(
            !external("go=./echo {port}")
                .expect("valid")
                .controls_delay()
        );
    }
}

//! The servers a comparison can run: the project's six variants, the article's two Python
//! baselines, and any `--external NAME=COMMAND`, each turned into a [`Launch`] for one run.
//!
//! Every variant gets the same delay, delay kind and listen backlog, so that rows differ only
//! in their concurrency model. The backlog is passed explicitly even to the Python baselines,
//! whose library defaults (5 and 100) would otherwise measure the kernel's SYN retry timer.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

use crate::results::Model;
use crate::server::{Launch, Ready, free_port};

/// Names of the built-in variants, in table order.
pub const BUILTIN: [&str; 8] = [
    "threaded",
    "threaded-pool",
    "tokio-multi",
    "tokio-current",
    "mio",
    "mio-2loops",
    "python-threaded",
    "python-asyncio",
];

/// How a variant is started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recipe {
    /// One of the project's binaries, built by cargo.
    Binary {
        /// Cargo package (and binary) name.
        package: &'static str,
        /// Arguments that make this variant.
        args: Vec<String>,
    },
    /// A script under `baselines/`, run with python3.
    Python {
        /// File name under `baselines/`.
        script: &'static str,
    },
    /// A user's command, split on white space, with `{port}`, `{delay}`, `{delay_ms}`.
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
    pub delay_kind: String,
    /// Listen backlog for every server.
    pub backlog: u32,
    /// Threads of `threaded-pool`.
    pub pool_size: u32,
    /// Workers of `tokio-multi`: the machine's cores.
    pub workers: u32,
}

/// The built-in variant called `name`.
///
/// # Errors
/// When `name` is not one of [`BUILTIN`].
pub fn builtin(name: &str, settings: &Settings) -> anyhow::Result<Variant> {
    let binary = |package, args: &[String]| Recipe::Binary {
        package,
        args: args.to_vec(),
    };
    let s = |text: &str| text.to_owned();
    let (model, recipe) = match name {
        "threaded" => (Model::Threads, binary("server-threaded", &[])),
        "threaded-pool" => {
            let pool = [s("--pool"), settings.pool_size.to_string()];
            (Model::Threads, binary("server-threaded", &pool))
        }
        "tokio-multi" => {
            let args = [
                s("--flavor"),
                s("multi"),
                s("--workers"),
                settings.workers.to_string(),
            ];
            (Model::Tokio, binary("server-async", &args))
        }
        "tokio-current" => (
            Model::Tokio,
            binary("server-async", &[s("--flavor"), s("current")]),
        ),
        "mio" => (Model::Mio, binary("server-mio", &[s("--loops"), s("1")])),
        "mio-2loops" => (Model::Mio, binary("server-mio", &[s("--loops"), s("2")])),
        "python-threaded" => (
            Model::PythonBaseline,
            Recipe::Python {
                script: "threaded_server.py",
            },
        ),
        "python-asyncio" => (
            Model::PythonBaseline,
            Recipe::Python {
                script: "asyncio_server.py",
            },
        ),
        other => bail!(
            "unknown server variant `{other}`; known: {}",
            BUILTIN.join(", ")
        ),
    };
    Ok(Variant {
        name: name.to_owned(),
        model,
        recipe,
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
    if name.is_empty() || BUILTIN.contains(&name) {
        bail!("--external `{spec}`: the name must be new and not empty");
    }
    if !template.contains("{port}") {
        bail!("--external `{spec}`: the command needs a {{port}} placeholder");
    }
    Ok(Variant {
        name: name.to_owned(),
        model: Model::External,
        recipe: Recipe::External {
            template: template.trim().to_owned(),
        },
    })
}

impl Variant {
    /// The cargo package it needs built, if any.
    pub fn package(&self) -> Option<&'static str> {
        match &self.recipe {
            Recipe::Binary { package, .. } => Some(package),
            _ => None,
        }
    }

    /// Whether its delay can be set, so that a zero-delay run means something.
    pub fn controls_delay(&self) -> bool {
        match &self.recipe {
            Recipe::External { template } => template.contains("{delay"),
            _ => true,
        }
    }

    /// The command for one run at `delay` (a spec such as `100ms` or `0`).
    ///
    /// # Errors
    /// When no free port can be found for an external server.
    pub fn launch(&self, settings: &Settings, delay: &str) -> anyhow::Result<Launch> {
        let common = |args: &mut Vec<String>| {
            args.extend(["--host", "127.0.0.1", "--port", "0", "--delay", delay].map(String::from));
            args.extend(["--backlog".to_owned(), settings.backlog.to_string()]);
        };
        let (program, args, envs, ready) = match &self.recipe {
            Recipe::Binary { package, args: own } => {
                let mut args = Vec::new();
                common(&mut args);
                args.extend(["--delay-kind".to_owned(), settings.delay_kind.clone()]);
                args.extend(own.iter().cloned());
                (
                    settings.bin_dir.join(package),
                    args,
                    vec![],
                    Ready::ListeningLine,
                )
            }
            Recipe::Python { script } => {
                let mut args = vec![
                    settings
                        .root
                        .join("baselines")
                        .join(script)
                        .display()
                        .to_string(),
                ];
                common(&mut args);
                // Keeps baselines/ free of __pycache__ litter.
                let envs = vec![("PYTHONDONTWRITEBYTECODE".to_owned(), "1".to_owned())];
                (PathBuf::from("python3"), args, envs, Ready::ListeningLine)
            }
            Recipe::External { template } => return external_launch(&self.name, template, delay),
        };
        Ok(Launch {
            name: self.name.clone(),
            program,
            args,
            envs,
            ready,
        })
    }
}

fn external_launch(name: &str, template: &str, delay: &str) -> anyhow::Result<Launch> {
    let port = free_port().context("cannot find a free port on 127.0.0.1")?;
    // `0` and every spec the servers accept parse here; the mean is what `{delay_ms}` gets.
    let delay_ms = delay
        .parse::<echo_core::DelayModel>()
        .map_or(0, |model| model.mean().as_millis())
        .to_string();
    let words: Vec<String> = template
        .split_whitespace()
        .map(|w| {
            w.replace("{port}", &port.to_string())
                .replace("{delay_ms}", &delay_ms)
                .replace("{delay}", delay)
        })
        .collect();
    let (program, args) = words.split_first().context("empty external command")?;
    Ok(Launch {
        name: name.to_owned(),
        program: Path::new(program).to_path_buf(),
        args: args.to_vec(),
        envs: vec![],
        ready: Ready::Connect(SocketAddr::from(([127, 0, 0, 1], port))),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> Settings {
        Settings {
            root: PathBuf::from("/repo"),
            bin_dir: PathBuf::from("/target/release"),
            delay_kind: "wait".to_owned(),
            backlog: 4096,
            pool_size: 64,
            workers: 2,
        }
    }

    #[test]
    fn every_builtin_variant_gets_port_zero_the_delay_and_the_backlog() {
        for name in BUILTIN {
            let launch = builtin(name, &settings())
                .and_then(|v| v.launch(&settings(), "100ms"))
                .expect("builtin variants launch");
            let line = launch.command_line();
            assert!(
                line.contains("--port 0 --delay 100ms --backlog 4096"),
                "{line}"
            );
            assert_eq!(launch.ready, Ready::ListeningLine);
        }
    }

    #[test]
    fn variants_differ_by_their_own_flags() {
        let line = |name| {
            let variant = builtin(name, &settings()).expect("known");
            variant
                .launch(&settings(), "0")
                .expect("launches")
                .command_line()
        };
        assert!(line("threaded-pool").ends_with("--pool 64"));
        assert!(line("tokio-multi").ends_with("--flavor multi --workers 2"));
        assert!(line("mio-2loops").ends_with("--loops 2"));
        assert!(line("python-asyncio").starts_with("python3 /repo/baselines/asyncio_server.py"));
    }

    #[test]
    fn an_unknown_variant_is_refused_with_the_known_names() {
        let error = builtin("nginx", &settings()).expect_err("unknown");
        assert!(
            error.to_string().contains("`nginx`; known: threaded"),
            "{error}"
        );
    }

    #[test]
    fn an_external_command_gets_a_free_port_and_the_delay_in_its_placeholders() {
        let variant = external("go=./echo -p {port} -d {delay_ms}").expect("valid");
        assert!(variant.controls_delay());
        let launch = variant.launch(&settings(), "100ms").expect("launches");
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
        assert!(
            !external("go=./echo {port}")
                .expect("valid")
                .controls_delay()
        );
    }
}

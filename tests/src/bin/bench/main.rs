//! `bench`: measures the numbers of brief.md §7 that this issue can fill, on real `hub` and
//! `till-node` processes over loopback HTTP, and prints them beside the targets as a table.
//!
//! ```text
//! scripts/bench.sh                      every row, full counts (release build)
//! scripts/bench.sh --quick              every row, counts scaled down (a smoke run)
//! scripts/bench.sh --only latency,fleet a subset: latency, buffered, fleet, restart
//! scripts/bench.sh --data DIR           where the restart row keeps its 7-day data set
//!                                       (default: bench-data/ next to this binary); it is
//!                                       generated once over HTTP and reused by later runs
//! ```
//! Progress goes to stderr, the table to stdout. Timed assertions do not belong in tests
//! (brief.md §7): this command reports, it does not fail on a missed target.

mod scenarios;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context};
use tests::Binaries;

/// One benchmark of the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Bench {
    Latency,
    Buffered,
    Fleet,
    Restart,
}

impl Bench {
    const ALL: [Bench; 4] = [
        Bench::Latency,
        Bench::Buffered,
        Bench::Fleet,
        Bench::Restart,
    ];

    fn name(self) -> &'static str {
        match self {
            Bench::Latency => "latency",
            Bench::Buffered => "buffered",
            Bench::Fleet => "fleet",
            Bench::Restart => "restart",
        }
    }

    fn parse(name: &str) -> Option<Bench> {
        Bench::ALL.into_iter().find(|b| b.name() == name)
    }
}

/// Counts of one run.
#[derive(Debug, Clone, Copy)]
pub struct Scale {
    /// Timed sales of the latency row.
    pub latency_sales: usize,
    /// Sales buffered offline before the hub starts.
    pub buffered_sales: usize,
    /// Tills of the fleet row.
    pub fleet_tills: usize,
    /// Offline sales per till of the fleet row.
    pub fleet_sales: usize,
    /// Days of closed sessions on disk for the restart row.
    pub restart_days: usize,
    /// Sessions per day.
    pub restart_sessions_per_day: usize,
    /// Receipts per session.
    pub restart_receipts: usize,
    /// Restarts measured.
    pub restarts: usize,
}

impl Scale {
    const FULL: Scale = Scale {
        latency_sales: 1_000,
        buffered_sales: 200,
        fleet_tills: 40,
        fleet_sales: 200,
        restart_days: 7,
        restart_sessions_per_day: 2,
        restart_receipts: 300,
        restarts: 5,
    };
    const QUICK: Scale = Scale {
        latency_sales: 200,
        buffered_sales: 200,
        fleet_tills: 10,
        fleet_sales: 50,
        restart_days: 2,
        restart_sessions_per_day: 2,
        restart_receipts: 100,
        restarts: 3,
    };
}

/// One row of the table. Durations in milliseconds.
#[derive(Debug, Clone)]
pub struct Row {
    /// What was measured.
    pub what: String,
    /// Our figure.
    pub ours_ms: f64,
    /// brief.md §7 target ("ours"), if the row has one.
    pub target_ms: Option<f64>,
    /// The seeds' target, if any.
    pub seeds_ms: Option<f64>,
    /// How it was measured.
    pub note: String,
}

struct Args {
    only: BTreeSet<Bench>,
    scale: Scale,
    data_dir: Option<PathBuf>,
}

const USAGE: &str = "usage: bench [--quick] [--only latency,buffered,fleet,restart] [--data DIR]";

fn parse_args() -> anyhow::Result<Args> {
    let mut args = Args {
        only: Bench::ALL.into_iter().collect(),
        scale: Scale::FULL,
        data_dir: None,
    };
    let mut raw = std::env::args().skip(1);
    while let Some(arg) = raw.next() {
        match arg.as_str() {
            "--quick" => args.scale = Scale::QUICK,
            "--only" => {
                let list = raw.next().context("--only needs a list")?;
                args.only = list
                    .split(',')
                    .map(|name| {
                        Bench::parse(name.trim())
                            .with_context(|| format!("unknown bench {name:?}\n{USAGE}"))
                    })
                    .collect::<anyhow::Result<_>>()?;
            }
            "--data" => {
                args.data_dir = Some(raw.next().context("--data needs a directory")?.into())
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => bail!("unknown argument {other:?}\n{USAGE}"),
        }
    }
    Ok(args)
}

fn format_ms(ms: f64) -> String {
    if ms >= 60_000.0 {
        format!("{:.1} min", ms / 60_000.0)
    } else if ms >= 1_000.0 {
        format!("{:.2} s", ms / 1_000.0)
    } else if ms >= 10.0 {
        format!("{ms:.0} ms")
    } else {
        format!("{ms:.2} ms")
    }
}

fn ratio(limit: Option<f64>, ours: f64) -> String {
    match limit {
        Some(limit) if ours > 0.0 => {
            let r = limit / ours;
            let verdict = if r >= 1.0 { "" } else { " MISSED" };
            format!("{r:.1}×{verdict}")
        }
        _ => "—".to_owned(),
    }
}

fn print_table(rows: &[Row]) {
    println!();
    println!("| row | ours | target (brief §7) | seeds | target ÷ ours | seeds ÷ ours |");
    println!("|---|---|---|---|---|---|");
    for row in rows {
        let cell =
            |v: Option<f64>| v.map_or_else(|| "—".to_owned(), |ms| format!("≤ {}", format_ms(ms)));
        println!(
            "| {} | {} | {} | {} | {} | {} |",
            row.what,
            format_ms(row.ours_ms),
            cell(row.target_ms),
            cell(row.seeds_ms),
            ratio(row.target_ms, row.ours_ms),
            ratio(row.seeds_ms, row.ours_ms),
        );
    }
    println!();
    // Rows measured together share one note: print it once, naming its rows.
    let mut notes: Vec<(&str, Vec<&str>)> = Vec::new();
    for row in rows {
        match notes.iter_mut().find(|(note, _)| *note == row.note) {
            Some((_, names)) => names.push(&row.what),
            None => notes.push((&row.note, vec![&row.what])),
        }
    }
    for (note, names) in notes {
        println!("- {}: {note}", names.join("; "));
    }
}

async fn run(args: Args) -> anyhow::Result<()> {
    let bins = Binaries::beside_current_exe()?;
    let data_dir = match args.data_dir {
        Some(dir) => dir,
        None => std::env::current_exe()?
            .parent()
            .context("no executable directory")?
            .join("bench-data"),
    };
    if cfg!(debug_assertions) {
        eprintln!(
            "warning: a debug build; figures mean little (scripts/bench.sh builds --release)"
        );
    }
    let cores = std::thread::available_parallelism().map_or(0, usize::from);
    eprintln!("bench: {cores} cores, counts {:?}", args.scale);
    let mut rows = Vec::new();
    for bench in &args.only {
        eprintln!("== {} ==", bench.name());
        let measured = match bench {
            Bench::Latency => scenarios::latency(&bins, &args.scale).await,
            Bench::Buffered => scenarios::buffered(&bins, &args.scale).await,
            Bench::Fleet => scenarios::fleet(&bins, &args.scale).await,
            Bench::Restart => scenarios::restart(&bins, &args.scale, &data_dir).await,
        }
        .with_context(|| format!("bench {}", bench.name()))?;
        rows.extend(measured);
    }
    println!(
        "OpticsERP Edge bench ({cores} cores, release = {})",
        !cfg!(debug_assertions)
    );
    print_table(&rows);
    Ok(())
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(error) => {
            eprintln!("{error:#}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("bench failed: {error:#}");
            ExitCode::FAILURE
        }
    }
}

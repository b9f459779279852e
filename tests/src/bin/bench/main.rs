//! `bench`: measures the numbers of brief.md §7 that the system has today, on real `hub` and
//! `till-node` processes over loopback HTTP, and prints them beside the targets as a table.
//!
//! ```text
//! scripts/bench.sh                      every row, full counts (release build)
//! scripts/bench.sh --quick              every row, counts scaled down (a smoke run)
//! scripts/bench.sh --only latency,fleet a subset: latency, buffered, fleet, restart, print,
//!                                       drain, pos (`fiscal` = print,drain)
//! scripts/bench.sh --data DIR           where the restart row keeps its 7-day data set
//!                                       (default: bench-data/ next to this binary); it is
//!                                       generated once over HTTP and reused by later runs
//! ```
//! The fiscal rows (`print`, `drain`) run the register and OFD emulators in this process (the
//! `fiscal-emulators` library) and the real till-node on the register's pseudo-terminal. The
//! `pos` rows drive the browser POS in headless Chromium (needs the bundle built by
//! scripts/build-web.sh and Debian's chromium + chromium-driver).
//!
//! Progress goes to stderr, the table to stdout. Timed assertions do not belong in tests
//! (brief.md §7): this command reports, it does not fail on a missed target.

mod fiscal;
mod pos;
mod scenarios;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context};
use tests::Binaries;

/// One benchmark of the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Bench {
    Latency,
    Buffered,
    Fleet,
    Restart,
    Print,
    Drain,
    Pos,
}

impl Bench {
    const ALL: [Bench; 7] = [
        Bench::Latency,
        Bench::Buffered,
        Bench::Fleet,
        Bench::Restart,
        Bench::Print,
        Bench::Drain,
        Bench::Pos,
    ];
    /// `--only fiscal`: every row of the fiscal pipeline.
    const FISCAL: [Bench; 2] = [Bench::Print, Bench::Drain];

    fn name(self) -> &'static str {
        match self {
            Bench::Latency => "latency",
            Bench::Buffered => "buffered",
            Bench::Fleet => "fleet",
            Bench::Restart => "restart",
            Bench::Print => "print",
            Bench::Drain => "drain",
            Bench::Pos => "pos",
        }
    }

    /// The benches a name of `--only` stands for.
    fn parse(name: &str) -> Option<Vec<Bench>> {
        if name == "fiscal" {
            return Some(Bench::FISCAL.to_vec());
        }
        Bench::ALL
            .into_iter()
            .find(|b| b.name() == name)
            .map(|b| vec![b])
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
    /// Timed sales of the print row with the register emulator at 0 ms per command.
    pub print_sales_fast: usize,
    /// Timed sales of the print row at 300 ms per command.
    pub print_sales_slow: usize,
    /// Receipts fiscalised while the OFD is down, then drained.
    pub drain_receipts: usize,
    /// Keep the OFD down until its circuit breaker has opened (5 failures on the pipeline's
    /// own backoff, about 20–75 s), as after a real outage; else only while selling.
    pub drain_outage_opens_breaker: bool,
    /// How long the drain row without operator action waits before it reports "> cap".
    pub drain_idle_cap: Duration,
    /// First renders measured per kind (cold, service worker).
    pub pos_renders: usize,
    /// Scans timed.
    pub pos_scans: usize,
    /// Payments timed.
    pub pos_pays: usize,
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
        print_sales_fast: 200,
        print_sales_slow: 50,
        drain_receipts: 200,
        drain_outage_opens_breaker: true,
        drain_idle_cap: Duration::from_secs(6 * 60),
        pos_renders: 7,
        pos_scans: 100,
        pos_pays: 50,
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
        print_sales_fast: 20,
        print_sales_slow: 5,
        drain_receipts: 50,
        drain_outage_opens_breaker: false,
        drain_idle_cap: Duration::from_secs(60),
        pos_renders: 3,
        pos_scans: 20,
        pos_pays: 10,
    };
}

/// What the figures of a row count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// A duration in milliseconds; the targets are upper bounds.
    Millis,
    /// A rate per second; the targets are lower bounds.
    PerSecond,
    /// A size in bytes; the targets are upper bounds.
    Bytes,
}

/// One row of the table.
#[derive(Debug, Clone)]
pub struct Row {
    /// What was measured.
    pub what: String,
    /// What `ours`, `target` and `seeds` count.
    pub unit: Unit,
    /// Our figure.
    pub ours: f64,
    /// `ours` is a lower bound: the bench stopped waiting (printed as "> ours").
    pub capped: bool,
    /// brief.md §7 target ("ours"), if the row has one.
    pub target: Option<f64>,
    /// The seeds' target, if any.
    pub seeds: Option<f64>,
    /// How it was measured.
    pub note: String,
}

impl Row {
    /// A duration row (milliseconds), measured to the end.
    pub fn millis(
        what: String,
        ours_ms: f64,
        target_ms: Option<f64>,
        seeds_ms: Option<f64>,
        note: String,
    ) -> Row {
        Row {
            what,
            unit: Unit::Millis,
            ours: ours_ms,
            capped: false,
            target: target_ms,
            seeds: seeds_ms,
            note,
        }
    }
}

struct Args {
    only: BTreeSet<Bench>,
    scale: Scale,
    data_dir: Option<PathBuf>,
}

const USAGE: &str =
    "usage: bench [--quick] [--only latency,buffered,fleet,restart,print,drain,pos] \
                     [--data DIR]\n  --only fiscal = print,drain";

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
                let mut only = BTreeSet::new();
                for name in list.split(',') {
                    only.extend(
                        Bench::parse(name.trim())
                            .with_context(|| format!("unknown bench {name:?}\n{USAGE}"))?,
                    );
                }
                args.only = only;
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

fn format_rate(per_second: f64) -> String {
    if per_second >= 10.0 {
        format!("{per_second:.0} /s")
    } else {
        format!("{per_second:.2} /s")
    }
}

fn format_bytes(bytes: f64) -> String {
    if bytes >= 1_048_576.0 {
        format!("{:.2} MiB", bytes / 1_048_576.0)
    } else {
        format!("{:.0} KiB", bytes / 1024.0)
    }
}

fn format_figure(unit: Unit, value: f64) -> String {
    match unit {
        Unit::Millis => format_ms(value),
        Unit::PerSecond => format_rate(value),
        Unit::Bytes => format_bytes(value),
    }
}

/// How many times better than `limit` our figure is (≥ 1 = met). A capped row knows only a
/// bound: "< r×" (and MISSED when even the bound misses).
fn ratio(unit: Unit, limit: Option<f64>, ours: f64, capped: bool) -> String {
    match limit {
        Some(limit) if ours > 0.0 && limit > 0.0 => {
            let r = match unit {
                Unit::Millis | Unit::Bytes => limit / ours,
                Unit::PerSecond => ours / limit,
            };
            let verdict = if r >= 1.0 { "" } else { " MISSED" };
            let bound = if capped { "< " } else { "" };
            format!("{bound}{r:.1}×{verdict}")
        }
        _ => "—".to_owned(),
    }
}

fn print_table(rows: &[Row]) {
    println!();
    println!("| row | ours | target (brief §7) | seeds | target ÷ ours | seeds ÷ ours |");
    println!("|---|---|---|---|---|---|");
    for row in rows {
        let bound = match row.unit {
            Unit::Millis | Unit::Bytes => "≤",
            Unit::PerSecond => "≥",
        };
        let cell = |v: Option<f64>| {
            v.map_or_else(
                || "—".to_owned(),
                |v| format!("{bound} {}", format_figure(row.unit, v)),
            )
        };
        let ours = format_figure(row.unit, row.ours);
        println!(
            "| {} | {}{} | {} | {} | {} | {} |",
            row.what,
            if row.capped { "> " } else { "" },
            ours,
            cell(row.target),
            cell(row.seeds),
            ratio(row.unit, row.target, row.ours, row.capped),
            ratio(row.unit, row.seeds, row.ours, row.capped),
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
            Bench::Print => fiscal::print(&bins, &args.scale).await,
            Bench::Drain => fiscal::drain(&bins, &args.scale).await,
            Bench::Pos => pos::pos(&bins, &args.scale).await,
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

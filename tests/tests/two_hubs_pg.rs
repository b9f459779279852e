//! Two hub processes on ONE PostgreSQL database serve the same tills correctly: the hub is
//! stateless between requests (brief.md §4, "that is how the hub scales out").
//!
//! 1. Till T1 syncs through hub A and till T2 through hub B; both hubs' summaries agree and
//!    count every sale once.
//! 2. The tills are restarted pointing at the other hub and sell more; again both hubs agree,
//!    with exact totals per till and per payment method, and nothing is missing either way.
//! 3. The same till (T3, an in-memory replica and an identical twin of it) syncs the same new
//!    receipts through both hubs at the same moment, five times: a round may fail with a
//!    retryable 5xx, never a 4xx, and afterwards every receipt is counted exactly once and both
//!    hubs serve T3's session document with the till's own heads.
//!
//! Needs PostgreSQL: `DATABASE_URL` (a fresh database is created and dropped per run). Without
//! it the test is skipped with a note, unless `CI=true` or `REQUIRE_PG=1`.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{bail, ensure, Context};
use sync_engine::http_client::TransportError;
use tests::{
    fetch_from_hub, wait_until, HubDb, HubEnv, HubProcess, PgDatabase, SaleGen, ScriptedTill,
    StoreSummary, Tally, TillProcess, TillSpec, STORE,
};

const SALES_PER_PHASE: usize = 40;
const T3_ROUNDS: usize = 5;
const T3_SALES_PER_ROUND: usize = 10;

async fn sell(
    till: &TillProcess,
    sales: &mut SaleGen,
    tally: &mut Tally,
    tag: &str,
) -> anyhow::Result<()> {
    let client = till.client()?;
    for n in 0..SALES_PER_PHASE {
        let sale = sales.sale();
        client.sell_ok(&format!("{tag}-{n}"), &sale.body).await?;
        tally.add(&sale);
    }
    client.force_sync().await
}

/// Waits until both hubs report `expected` and match every figure of the tallies.
async fn wait_both_agree(
    hubs: [&HubProcess; 2],
    token: &str,
    tallies: &BTreeMap<String, Tally>,
) -> anyhow::Result<StoreSummary> {
    let expected = Tally::sum(tallies.values()).receipts;
    let mut summaries = Vec::new();
    for hub in hubs {
        let summary = wait_until(
            &format!("{expected} receipts on {}", hub.url()),
            Duration::from_secs(60),
            || async {
                let summary = hub.client().summary(token, STORE).await?;
                Ok((summary.receipts >= expected).then_some(summary))
            },
        )
        .await?;
        if let Err(problems) = Tally::check_summary(tallies, &summary) {
            bail!("{}: {problems}", hub.url());
        }
        summaries.push(summary);
    }
    ensure!(
        summaries[0] == summaries[1],
        "the hubs disagree: {summaries:?}"
    );
    Ok(summaries.swap_remove(0))
}

/// One sync of `till`; a failure must be retryable (5xx, timeout, connection), never a refusal.
async fn sync_tolerating_retryable(
    till: &mut ScriptedTill,
    url: &str,
    token: &str,
) -> anyhow::Result<bool> {
    match till.sync(url, token).await {
        Ok(_) => Ok(true),
        Err(error) => match error.downcast_ref::<TransportError>() {
            Some(
                TransportError::Server { .. }
                | TransportError::Timeout
                | TransportError::Unreachable(_),
            ) => Ok(false),
            _ => Err(error.context(format!("sync through {url} refused"))),
        },
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_hubs_on_one_postgres_serve_the_same_tills() -> anyhow::Result<()> {
    let Some(pg) = PgDatabase::fresh_or_skip("two_hubs_pg").await? else {
        return Ok(());
    };
    let bins = tests::binaries!();
    let work = tests::work_dir("two_hubs_pg")?;
    let env = HubEnv::new(&bins, HubDb::Postgres(pg.url().to_owned()), work.path());
    env.create_admin().await?;
    env.import_catalogue(
        STORE,
        "sku,ean,name,price,vat\nF-1,,Оправа,150000,vat22\nL-1,,Линза,50000,none\n",
    )
    .await?;
    let token_t1 = env.enroll_till(STORE, "T1").await?;
    let token_t2 = env.enroll_till(STORE, "T2").await?;
    let token_t3 = env.enroll_till(STORE, "T3").await?;
    let hub_a = env.serve("hub-a", "127.0.0.1:0").await?;
    let hub_b = env.serve("hub-b", "127.0.0.1:0").await?;
    let admin = hub_a.admin_token().await?;

    // Phase 1: T1 → A, T2 → B.
    let mut t1 = TillProcess::start(
        &bins,
        TillSpec::new(STORE, "T1", work.path(), &hub_a.url(), &token_t1).heartbeat(1),
    )
    .await?;
    let mut t2 = TillProcess::start(
        &bins,
        TillSpec::new(STORE, "T2", work.path(), &hub_b.url(), &token_t2).heartbeat(1),
    )
    .await?;
    t1.client()?.open_session("Иванова", 0).await?;
    t2.client()?.open_session("Петрова", 0).await?;
    let (mut sales1, mut sales2) = (SaleGen::new(11, "T1"), SaleGen::new(12, "T2"));
    let (mut tally1, mut tally2) = (Tally::default(), Tally::default());
    tokio::try_join!(
        sell(&t1, &mut sales1, &mut tally1, "t1-a"),
        sell(&t2, &mut sales2, &mut tally2, "t2-b"),
    )?;
    let tallies = BTreeMap::from([("T1".to_owned(), tally1), ("T2".to_owned(), tally2)]);
    wait_both_agree([&hub_a, &hub_b], &admin, &tallies)
        .await
        .context("phase 1")?;

    // Phase 2: switch hubs and sell more.
    t1.restart_with_hub(&hub_b.url()).await?;
    t2.restart_with_hub(&hub_a.url()).await?;
    tokio::try_join!(
        sell(&t1, &mut sales1, &mut tally1, "t1-b"),
        sell(&t2, &mut sales2, &mut tally2, "t2-a"),
    )?;
    let mut tallies = BTreeMap::from([("T1".to_owned(), tally1), ("T2".to_owned(), tally2)]);
    wait_both_agree([&hub_a, &hub_b], &admin, &tallies)
        .await
        .context("phase 2")?;
    for till in [&t1, &t2] {
        let client = till.client()?;
        wait_until(
            "the till to see all its sales on the hub",
            Duration::from_secs(30),
            || async {
                client.force_sync().await?;
                Ok((client.buffer_status().await?["unsynced_receipts"] == 0).then_some(()))
            },
        )
        .await
        .with_context(|| till.spec().peer())?;
    }

    // Phase 3: one till through both hubs at the same moment.
    let mut t3 = ScriptedTill::open(STORE, "T3", "node")?;
    let mut sales3 = SaleGen::new(13, "T3");
    let mut tally3 = Tally::default();
    let mut retryable_failures = 0;
    let (url_a, url_b) = (hub_a.url(), hub_b.url());
    for _round in 0..T3_ROUNDS {
        for _ in 0..T3_SALES_PER_ROUND {
            let sale = sales3.sale();
            t3.sell(&sale)?;
            tally3.add(&sale);
        }
        let mut twin = t3.twin()?;
        let (via_a, via_b) = tokio::join!(
            sync_tolerating_retryable(&mut t3, &url_a, &token_t3),
            sync_tolerating_retryable(&mut twin, &url_b, &token_t3),
        );
        for ok in [via_a?, via_b?] {
            if !ok {
                retryable_failures += 1;
            }
        }
    }
    // Whatever a concurrent round left undone, a plain sync through either hub finishes.
    t3.sync(&hub_b.url(), &token_t3)
        .await
        .context("final sync of T3")?;
    tallies.insert("T3".to_owned(), tally3);
    let summary = wait_both_agree([&hub_a, &hub_b], &admin, &tallies)
        .await
        .context("phase 3")?;
    let expected_t3 = t3.session_view()?.receipts.len();
    ensure!(
        expected_t3 == T3_ROUNDS * T3_SALES_PER_ROUND,
        "T3 holds {expected_t3} receipts"
    );
    for hub in [&hub_a, &hub_b] {
        let mut served = fetch_from_hub(&hub.url(), &token_t3, STORE, "T3").await?;
        ensure!(
            served.heads(t3.session_doc()) == t3.session_heads(),
            "{} serves other heads of T3's session",
            hub.url()
        );
    }
    let report_a = hub_a.client().divergence(&admin).await?;
    for peer in ["till:S1/T1", "till:S1/T2"] {
        let entry = report_a
            .till(peer)
            .with_context(|| format!("{peer} in the divergence report"))?;
        ensure!(
            entry.docs.iter().all(|d| d.hub_lacks == 0),
            "hub lacks changes of {peer}: {entry:?}"
        );
    }
    eprintln!(
        "two_hubs_pg: {} receipts on both hubs; {retryable_failures} concurrent T3 round(s) failed retryably",
        summary.receipts
    );
    t1.stop().await;
    t2.stop().await;
    drop((hub_a, hub_b));
    pg.drop_database().await
}

//! Two tills of one store sell while the hub does not run at all, then the hub starts on the
//! address they were configured with, and the store converges: the hub's summary counts each of
//! the 400 sales exactly once, with the exact total, per till and per payment method, and the
//! divergence report shows nothing missing on either side for either till (issue 2, "Two tills
//! offline, 200 sales each, hub started afterwards").

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{ensure, Context};
use tests::{
    free_port, wait_until, HubEnv, SaleGen, Tally, TillClient, TillProcess, TillSpec, STORE,
};

const SALES_PER_TILL: usize = 200;
const TILLS: [&str; 2] = ["T1", "T2"];

/// Sells `count` sales on `till`; returns what the hub must then count.
async fn sell_offline(
    till: &TillClient,
    seed: u64,
    pos: &str,
    count: usize,
) -> anyhow::Result<Tally> {
    let mut sales = SaleGen::new(seed, pos);
    let mut tally = Tally::default();
    for n in 0..count {
        let sale = sales.sale();
        till.sell_ok(&format!("{pos}-sale-{n}"), &sale.body)
            .await
            .with_context(|| format!("{pos}: sale {n}"))?;
        tally.add(&sale);
    }
    Ok(tally)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn offline_tills_converge_once_the_hub_starts() -> anyhow::Result<()> {
    let bins = tests::binaries!();
    let work = tests::work_dir("offline_tills")?;
    let hub_env = HubEnv::sqlite(&bins, work.path());
    hub_env.create_admin().await?;
    hub_env
        .import_catalogue(STORE, "sku,ean,name,price,vat\nF-1,,Оправа,150000,vat22\n")
        .await?;
    let port = free_port()?;
    let hub_url = format!("http://127.0.0.1:{port}");

    let mut tills = Vec::new();
    for till in TILLS {
        let token = hub_env.enroll_till(STORE, till).await?;
        let spec = TillSpec::new(STORE, till, work.path(), &hub_url, &token).heartbeat(1);
        tills.push(TillProcess::start(&bins, spec).await?);
    }

    // Offline: sessions open and 200 sales each, both tills at once.
    let mut sessions = Vec::new();
    for till in &tills {
        sessions.push(till.client()?.open_session("Иванова", 0).await?);
    }
    let (t1, t2) = (tills[0].client()?, tills[1].client()?);
    let (tally1, tally2) = tokio::try_join!(
        sell_offline(t1, 1, "T1", SALES_PER_TILL),
        sell_offline(t2, 2, "T2", SALES_PER_TILL),
    )?;
    let per_till: BTreeMap<String, Tally> =
        BTreeMap::from([("T1".to_owned(), tally1), ("T2".to_owned(), tally2)]);
    for till in &tills {
        let status = till.client()?.buffer_status().await?;
        ensure!(
            status["unsynced_receipts"] == SALES_PER_TILL,
            "{}: all sales wait for the hub: {status}",
            till.spec().peer()
        );
        ensure!(
            status["network_status"] != "online",
            "{}: no hub, yet online: {status}",
            till.spec().peer()
        );
    }

    // The hub starts where the tills expect it; they push on their own (heartbeat) and on force.
    let hub = hub_env.serve("hub", &format!("127.0.0.1:{port}")).await?;
    for till in &tills {
        till.client()?.force_sync().await?;
    }
    let token = hub.admin_token().await?;
    let summary = wait_until(
        "400 receipts on the hub",
        Duration::from_secs(90),
        || async {
            let summary = hub.client().summary(&token, STORE).await?;
            Ok((summary.receipts >= 2 * SALES_PER_TILL as u64).then_some(summary))
        },
    )
    .await?;
    if let Err(problems) = Tally::check_summary(&per_till, &summary) {
        anyhow::bail!("hub summary is wrong: {problems}\n{summary:?}");
    }

    // Each till learns that the hub holds everything.
    for (till, session) in tills.iter().zip(&sessions) {
        let client = till.client()?;
        wait_until(
            "the till to see its sales acknowledged",
            Duration::from_secs(30),
            || async {
                client.force_sync().await?;
                let status = client.buffer_status().await?;
                Ok(
                    (status["unsynced_receipts"] == 0 && status["current_queued"] == 0)
                        .then_some(()),
                )
            },
        )
        .await
        .with_context(|| till.spec().peer())?;
        let receipts = client.session_receipts(session).await?;
        ensure!(
            receipts.len() == SALES_PER_TILL,
            "{}: {} receipts",
            till.spec().peer(),
            receipts.len()
        );
    }

    // Divergence: for both tills, every document, nothing missing on either side.
    let report = wait_until(
        "an empty divergence report",
        Duration::from_secs(30),
        || async {
            for till in &tills {
                till.client()?.force_sync().await?;
            }
            let report = hub.client().divergence(&token).await?;
            let clean = TILLS.iter().all(|till| {
                report
                    .till(&format!("till:{STORE}/{till}"))
                    .is_some_and(|entry| {
                        entry.last_sync_ms.is_some()
                            && !entry.docs.is_empty()
                            && entry
                                .docs
                                .iter()
                                .all(|d| d.hub_lacks == 0 && d.till_lacks == 0)
                    })
            });
            Ok(clean.then_some(report))
        },
    )
    .await?;
    for till in TILLS {
        let entry = report
            .till(&format!("till:{STORE}/{till}"))
            .context("till in the report")?;
        let session_docs = entry
            .docs
            .iter()
            .filter(|d| d.doc.starts_with("session/"))
            .count();
        ensure!(
            session_docs == 1,
            "{till}: {session_docs} session documents reported"
        );
    }

    // Converged state is stable: the summary has not moved.
    let again = hub.client().summary(&token, STORE).await?;
    ensure!(
        again == summary,
        "summary changed after convergence: {again:?}"
    );
    Ok(())
}

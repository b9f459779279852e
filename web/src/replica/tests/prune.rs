//! Forgetting closed sessions: the till drops a closed session a week after its close and
//! refuses (403) a page that still lists one, so the page forgets a closed session, but only
//! when a sync round has just shown the till holds all of it and the OFD acknowledged every
//! receipt in it; never the open one.
//!
//! The bug story: the page used to prune when a sync round began, on the sync state it had
//! persisted earlier (and at login). A till restored from an old backup no longer holds what
//! that state says, so the page dropped the only copy of receipts. Now a persisted state alone
//! never prunes: only the replies of the session just ended count.

use super::*;

/// The till's OFD acknowledges receipt `n` of `doc`.
fn till_acknowledges(till: &mut MemoryReplica, doc: &DocId, n: u128) {
    till.change(doc, NOW, |doc| {
        let target = FiscalTarget::Receipt(receipt_id(n));
        let fd = u32::try_from(n).expect("small");
        session::record_fiscal(doc, target, &fiscal(fd, OfdState::Acknowledged)).expect("ack");
        Ok(())
    })
    .expect("ack change");
}

/// The till closes `doc`.
fn till_closes(till: &mut MemoryReplica, doc: &DocId) {
    let closed_at = Hlc::new(NOW + 1000, 0, "S1/T1/node").expect("hlc");
    till.change(doc, NOW, |doc| {
        session::close(doc, &closed_at, "Иванова").expect("close");
        Ok(())
    })
    .expect("close change");
}

#[test]
fn closed_sessions_the_till_holds_whole_and_the_ofd_acknowledged_are_forgotten() {
    let mut till = till();
    let first = till_opens(&mut till, 1);
    let mut idb = FakeIdb::default();
    let mut browser = fresh_browser(&mut till, &mut idb);
    let write = browser
        .sell(sale_draft(1000), receipt_id(1), NOW)
        .expect("sold");
    idb.put_sale(&write);
    sync(&mut browser, &mut till, &mut idb);
    // Open, and even fully synced: kept.
    assert!(browser.synced_closed_sessions().is_empty());
    let before_close = idb.clone();

    till_closes(&mut till, &first);
    let second = till_opens_session(&mut till, 2);
    sync(&mut browser, &mut till, &mut idb);
    assert_eq!(
        browser.open_session().map(|open| open.doc),
        Some(second.clone())
    );
    // Closed and held whole by the till, but the OFD has not acknowledged its receipt: the
    // page stays a backup.
    assert!(browser.synced_closed_sessions().is_empty());
    till_acknowledges(&mut till, &first, 1);
    sync(&mut browser, &mut till, &mut idb);

    // A sync state older than the close does not prove the till holds the whole document.
    let stale = StoredReplica {
        states: before_close.states.clone().into_iter().collect(),
        ..idb.stored()
    };
    let mut unproven = Replica::load(identity(), stale).expect("load");
    assert!(unproven.synced_closed_sessions().is_empty());
    // Nor does a lost sync state.
    let mut lost = idb.stored();
    lost.states.retain(|(id, _)| id != first.as_str());
    let mut unproven = Replica::load(identity(), lost).expect("load");
    assert!(unproven.synced_closed_sessions().is_empty());

    // With this sync round's replies it does: the closed one goes, here and in IndexedDB
    // (documents and sync states in one write), the open one stays.
    let synced = browser.synced_closed_sessions();
    assert_eq!(synced, vec![first.clone()]);
    browser.forget(&synced);
    idb.forget(&synced);
    assert!(browser.session(&first).is_none());
    // A receipt no session here holds any more: the page treats it as acknowledged.
    assert_eq!(browser.receipt_state(receipt_id(1)), None);
    assert_eq!(
        browser.open_session().map(|open| open.doc),
        Some(second.clone())
    );
    assert_eq!(browser.products(), vec![frame()]);

    // After a reload the next sync does not list it any more (the till would refuse it).
    let mut browser = Replica::load(identity(), idb.stored()).expect("reload");
    assert!(browser.session(&first).is_none());
    assert!(browser.synced_closed_sessions().is_empty());
    let mut round = browser.start_sync();
    let request = browser
        .next_request(&mut round)
        .expect("request")
        .expect("first request");
    let listed: Vec<&str> = request.entries.iter().map(|e| e.doc.as_str()).collect();
    assert!(!listed.contains(&first.as_str()), "{listed:?}");
    assert!(listed.contains(&second.as_str()), "{listed:?}");
    // Selling goes on in the open session.
    let write = browser
        .sell(sale_draft(1000), receipt_id(2), NOW + 2000)
        .expect("sold");
    assert_eq!(write.doc, second);
}

#[test]
fn a_persisted_sync_state_alone_never_prunes() {
    let mut till = till();
    let first = till_opens(&mut till, 1);
    let mut idb = FakeIdb::default();
    let mut browser = fresh_browser(&mut till, &mut idb);
    let write = browser
        .sell(sale_draft(1000), receipt_id(1), NOW)
        .expect("sold");
    idb.put_sale(&write);
    sync(&mut browser, &mut till, &mut idb);
    till_acknowledges(&mut till, &first, 1);
    till_closes(&mut till, &first);
    till_opens_session(&mut till, 2);
    sync(&mut browser, &mut till, &mut idb);
    // Everything a prune needs is persisted, and this replica's session just proved it.
    assert_eq!(browser.synced_closed_sessions(), vec![first.clone()]);

    // Reloaded from that very state (say the till was since restored from an old backup):
    // nothing goes before a sync round proves the till holds it again.
    let mut reloaded = Replica::load(identity(), idb.stored()).expect("reload");
    assert!(reloaded.synced_closed_sessions().is_empty());
    // A session just begun proves nothing either: what an earlier session proved is dropped.
    let _round = browser.start_sync();
    assert!(browser.synced_closed_sessions().is_empty());

    // A restored till that lacks the session: its first reply does not show it holds all,
    // so nothing goes; the page sends the session back, and only once the till holds it
    // whole may the page forget it.
    let mut restored = self::till();
    till_opens_session(&mut restored, 2);
    let mut round = reloaded.start_sync();
    let request = reloaded
        .next_request(&mut round)
        .expect("request")
        .expect("first request");
    let reply = restored
        .serve(&browser_peer(), &request)
        .expect("served")
        .reply;
    reloaded.apply_reply(&mut round, &reply).expect("applied");
    assert!(reloaded.synced_closed_sessions().is_empty());
    while let Some(request) = reloaded.next_request(&mut round).expect("request") {
        let reply = restored
            .serve(&browser_peer(), &request)
            .expect("served")
            .reply;
        reloaded.apply_reply(&mut round, &reply).expect("applied");
    }
    assert_eq!(till_receipts(&restored, &first).len(), 1);
    assert_eq!(reloaded.synced_closed_sessions(), vec![first]);
}

#[test]
fn a_closed_session_with_a_receipt_the_till_lacks_is_kept() {
    let mut till = till();
    let first = till_opens(&mut till, 1);
    let mut idb = FakeIdb::default();
    let mut browser = fresh_browser(&mut till, &mut idb);
    // Sold here while the till, on its own, closes the shift.
    let write = browser
        .sell(sale_draft(1000), receipt_id(1), NOW)
        .expect("sold");
    idb.put_sale(&write);
    till_closes(&mut till, &first);
    // The first round brings the close; the link drops before the receipt gets through.
    let mut round = browser.start_sync();
    let request = browser
        .next_request(&mut round)
        .expect("request")
        .expect("first request");
    let reply = till.serve(&browser_peer(), &request).expect("served").reply;
    let write = browser.apply_reply(&mut round, &reply).expect("applied");
    idb.put_sync(&write);
    assert!(browser.session(&first).expect("held").is_closed());
    assert!(till_receipts(&till, &first).is_empty());
    assert!(browser.synced_closed_sessions().is_empty());
    let mut reloaded = Replica::load(identity(), idb.stored()).expect("reload");
    assert!(reloaded.synced_closed_sessions().is_empty());

    // Once the receipt is on the till, and the OFD acknowledged it, the session may go.
    sync(&mut browser, &mut till, &mut idb);
    assert_eq!(till_receipts(&till, &first).len(), 1);
    assert!(browser.synced_closed_sessions().is_empty());
    till_acknowledges(&mut till, &first, 1);
    sync(&mut browser, &mut till, &mut idb);
    assert_eq!(browser.synced_closed_sessions(), vec![first]);
}

//! Forgetting closed sessions: the till drops a closed session a week after its close and
//! refuses (403) a page that still lists one, so the page forgets a closed session as soon as
//! the till is known to hold all of it, and never before, nor the open one.

use super::*;

#[test]
fn closed_sessions_the_till_holds_whole_are_forgotten_and_the_open_one_never() {
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

    let closed_at = Hlc::new(NOW + 1000, 0, "S1/T1/node").expect("hlc");
    till.change(&first, NOW, |doc| {
        session::close(doc, &closed_at, "Иванова").expect("close");
        Ok(())
    })
    .expect("close change");
    let second = till_opens_session(&mut till, 2);
    sync(&mut browser, &mut till, &mut idb);
    assert_eq!(
        browser.open_session().map(|open| open.doc),
        Some(second.clone())
    );

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

    // With the state persisted by the last round it does: the closed one goes, here and in
    // IndexedDB (documents and sync states in one write), the open one stays.
    let synced = browser.synced_closed_sessions();
    assert_eq!(synced, vec![first.clone()]);
    browser.forget(&synced);
    idb.forget(&synced);
    assert!(browser.session(&first).is_none());
    assert_eq!(
        browser.open_session().map(|open| open.doc),
        Some(second.clone())
    );
    assert_eq!(browser.products(), vec![frame()]);

    // After a reload the next sync does not list it any more (the till would refuse it).
    let mut browser = Replica::load(identity(), idb.stored()).expect("reload");
    assert!(browser.session(&first).is_none());
    assert!(browser.synced_closed_sessions().is_empty());
    let mut session = browser.start_sync();
    let request = browser
        .next_request(&mut session)
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
    let closed_at = Hlc::new(NOW + 1000, 0, "S1/T1/node").expect("hlc");
    till.change(&first, NOW, |doc| {
        session::close(doc, &closed_at, "Иванова").expect("close");
        Ok(())
    })
    .expect("close change");
    // The first round brings the close; the link drops before the receipt gets through.
    let mut session = browser.start_sync();
    let request = browser
        .next_request(&mut session)
        .expect("request")
        .expect("first request");
    let reply = till.serve(&browser_peer(), &request).expect("served").reply;
    let write = browser.apply_reply(&mut session, &reply).expect("applied");
    idb.put_sync(&write);
    assert!(browser.session(&first).expect("held").is_closed());
    assert!(till_receipts(&till, &first).is_empty());
    assert!(browser.synced_closed_sessions().is_empty());
    let mut reloaded = Replica::load(identity(), idb.stored()).expect("reload");
    assert!(reloaded.synced_closed_sessions().is_empty());

    // Once the receipt is on the till, the session may go.
    sync(&mut browser, &mut till, &mut idb);
    assert_eq!(till_receipts(&till, &first).len(), 1);
    assert_eq!(browser.synced_closed_sessions(), vec![first]);
}

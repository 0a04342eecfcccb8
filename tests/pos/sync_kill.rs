//! SIGKILL during sync: a hub and two terminals as real `pos` processes on loopback, the
//! terminals selling while they sync; the hub is killed at random points and restarted on the
//! same data dir (on a new port, behind the same proxy), a terminal is killed at random points
//! and restarted with more sales. Afterwards the hub must hold exactly what each terminal
//! wrote, every receipt a terminal reported as sold included, and every log must verify.
//!
//! A test target of the `pos` package (see firmware/Cargo.toml) for `CARGO_BIN_EXE_pos`.
//! `CHAOS_SEED=<seed>` replays the random delays of a failed run (the seed is printed).

#![allow(clippy::unwrap_used)] // a panic in a test is a failed test

mod support;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use pos_system_tests::chaos::{self, ChaosProxy};
use pos_system_tests::XorShift;
use support::{
    assert_hub_holds_the_terminals, device_id, receipts_of, sale_attempts, sold_receipts,
    wait_until, wait_until_settled, Env, Proc,
};

const ROUNDS: u64 = 4;
const FIRST_SALES: u64 = 30;
const MORE_SALES: u64 = 20;
const RATE: f64 = 10.0;
/// A terminal is killed this long after its start at the latest: about its 20 sales at 10/s
/// (and its catching up after a restart).
const TERMINAL_RUN_MS: u64 = 2500;

#[test]
fn killing_the_hub_and_the_terminals_during_sync_loses_nothing_and_duplicates_nothing() {
    let started = Instant::now();
    let seed = chaos::seed_from_env();
    let mut rng = XorShift::new(seed);
    let env = Env::new();
    env.init_hub();
    let codes = env.enroll_codes(2);
    let tills = [env.terminal("a", "till-a"), env.terminal("b", "till-b")];
    let names = ["till-a", "till-b"];
    let (hub, hub_addr) = env.start_hub();
    for (till, code) in tills.iter().zip(&codes) {
        env.enroll(till, hub_addr, code);
    }
    // No faults: the proxies only let the terminals keep one address while the hub's changes,
    // and hold their reconnects while no hub runs.
    let proxies: Vec<ChaosProxy> = names
        .iter()
        .map(|name| ChaosProxy::start(name, hub_addr, rng.next_u64()).unwrap())
        .collect();
    let mut hub = Some(hub);
    let mut terminals: Vec<Option<Proc>> = (0..2)
        .map(|i| {
            Some(env.start_terminal(names[i], &tills[i], proxies[i].addr(), FIRST_SALES, RATE))
        })
        .collect();
    // What each terminal said it sold, over all its runs.
    let mut sold: Vec<Vec<u64>> = vec![Vec::new(); 2];
    let mut hub_kills = Vec::new();
    let mut terminal_kills = Vec::new();
    macro_rules! diagnostics {
        () => {
            || {
                let mut s = format!("seed {seed}\n");
                for t in terminals.iter().flatten() {
                    s.push_str(&t.tail(30));
                }
                if let Some(h) = &hub {
                    s.push_str(&h.tail(30));
                }
                s
            }
        };
    }
    wait_until(
        "both terminals online",
        Duration::from_secs(60),
        || {
            terminals
                .iter()
                .flatten()
                .all(|t| t.count("sync online") > 0)
        },
        diagnostics!(),
    );

    for _ in 0..ROUNDS {
        // The hub, at a random point while the terminals sell and sync.
        let wait = rng.range(300, 2000);
        std::thread::sleep(Duration::from_millis(wait));
        let stored_before: Vec<u64> = tills
            .iter()
            .map(|t| support::max_seq(&env.hub, device_id(t)))
            .collect();
        hub.take().unwrap().kill9();
        // Reconnects wait at the proxies until the new hub listens.
        for p in &proxies {
            p.partition();
        }
        let (restarted, addr) = env.start_hub();
        hub = Some(restarted);
        for p in &proxies {
            p.set_upstream(addr);
            p.end_partition();
        }
        hub_kills.push(format!("after {wait} ms, stored {stored_before:?}"));

        // Each terminal, at a random point of its run (while it sells and syncs, or just
        // after), is killed and restarted with more sales.
        let first = rng.range(0, 1) as usize;
        for i in [first, 1 - first] {
            let at = Duration::from_millis(rng.range(300, TERMINAL_RUN_MS));
            let running = terminals[i].as_ref().unwrap().age();
            std::thread::sleep(at.saturating_sub(running));
            let killed = terminals[i].take().unwrap();
            let ran = killed.age();
            let stderr = killed.kill9();
            let receipts = sold_receipts(&stderr);
            terminal_kills.push(format!(
                "{} after {:.1} s (sold {})",
                names[i],
                ran.as_secs_f64(),
                receipts.len()
            ));
            sold[i].extend(receipts);
            terminals[i] =
                Some(env.start_terminal(names[i], &tills[i], proxies[i].addr(), MORE_SALES, RATE));
        }
    }
    eprintln!("hub killed: {hub_kills:?}");
    eprintln!("terminals killed: {terminal_kills:?}");

    // Everything sold reaches the hub.
    // The last runs are not killed: they finish all their sales. (Each may fail: a ticket
    // left open with a payment by a kill comes back at the next login, and the scripted sale
    // cannot change its items; see `recovered` below.)
    wait_until_settled(
        &env.hub,
        &tills,
        Duration::from_secs(90),
        || {
            terminals
                .iter()
                .flatten()
                .all(|t| sale_attempts(&t.stderr()) as u64 == MORE_SALES)
        },
        diagnostics!(),
    );
    let recovered: Vec<usize> = terminals
        .iter()
        .flatten()
        .map(|t| t.count("open ticket recovered"))
        .collect();
    for (i, t) in terminals.iter_mut().enumerate() {
        let t = t.take().unwrap();
        let (status, stderr) = t.stop(Duration::from_secs(30));
        assert!(status.success(), "{}: {status}\n{stderr}", names[i]);
        sold[i].extend(sold_receipts(&stderr));
    }
    let (status, hub_log) = hub.take().unwrap().stop(Duration::from_secs(30));
    assert!(status.success(), "hub: {status}\n{hub_log}");
    drop(proxies);

    let paths: Vec<&std::path::Path> = tills.iter().map(|t| t.as_path()).collect();
    assert_hub_holds_the_terminals(&env, &paths);
    for (i, till) in tills.iter().enumerate() {
        // A receipt number is never used twice, even across crashes ...
        let unique: BTreeSet<u64> = sold[i].iter().copied().collect();
        assert_eq!(unique.len(), sold[i].len(), "{}: {:?}", names[i], sold[i]);
        // ... and every receipt the terminal reported as sold is at the hub.
        let at_hub: BTreeSet<u64> = receipts_of(&env.hub, device_id(till))
            .iter()
            .map(|r| r.number as u64)
            .collect();
        let missing: Vec<u64> = unique.difference(&at_hub).copied().collect();
        assert!(
            missing.is_empty(),
            "{}: sold but not at the hub: {missing:?}",
            names[i]
        );
        assert!(!sold[i].is_empty(), "{} sold nothing", names[i]);
    }
    eprintln!(
        "seed {seed}: sold {:?}, open tickets recovered in the last runs {recovered:?}, whole \
         test {:.1} s",
        sold.iter().map(Vec::len).collect::<Vec<_>>(),
        started.elapsed().as_secs_f64()
    );
}

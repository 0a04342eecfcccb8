//! A hub and two terminals as real `pos` processes on loopback; the terminals sell while they
//! sync through a fault-injecting proxy each (dropped, reset, duplicated, truncated and
//! delayed chunks, and a partition of several seconds). Once the network heals, the hub must
//! hold exactly what each terminal wrote, byte for byte, with the same sales, and every
//! device's log must verify.
//!
//! A test target of the `pos` package (see firmware/Cargo.toml) for `CARGO_BIN_EXE_pos`.
//! `CHAOS_SEED=<seed>` replays the proxies' decisions of a failed run (the seed is printed).

#![allow(clippy::unwrap_used)] // a panic in a test is a failed test

mod support;

use std::time::{Duration, Instant};

use pos_system_tests::chaos::{self, ChaosProxy, Faults};
use pos_system_tests::XorShift;
use support::{
    assert_hub_holds_the_terminals, sale_attempts, sold_receipts, wait_until, wait_until_settled,
    Env,
};

const SALES: u64 = 40;
const RATE: f64 = 10.0;
/// Each destructive fault ends a connection, and the terminal's reconnect backoff doubles with
/// every failed one (from 500 ms, reset only by a connection that lasts 30 s): 3 faults before
/// the partition, its cut and 2 after keep the longest wait at about 16 s.
const FAULTS: Faults = Faults {
    drop: 20,
    reset: 20,
    duplicate: 20,
    truncate: 20,
    delay: 80,
    delay_max_ms: 300,
    max_faults: 3,
};
const PARTITION: Duration = Duration::from_secs(6);

#[test]
fn terminals_selling_through_faults_and_a_partition_leave_the_hub_with_exactly_their_logs() {
    let started = Instant::now();
    let seed = chaos::seed_from_env();
    let mut rng = XorShift::new(seed);
    let env = Env::new();
    env.init_hub();
    let codes = env.enroll_codes(2);
    let tills = [env.terminal("a", "till-a"), env.terminal("b", "till-b")];
    let (hub, hub_addr) = env.start_hub();
    for (till, code) in tills.iter().zip(&codes) {
        env.enroll(till, hub_addr, code);
    }
    let proxies: Vec<ChaosProxy> = ["a", "b"]
        .iter()
        .map(|name| ChaosProxy::start(name, hub_addr, rng.next_u64()).unwrap())
        .collect();
    for p in &proxies {
        p.set_faults(FAULTS);
    }
    let terminals: Vec<_> = tills
        .iter()
        .zip(&proxies)
        .zip(["till-a", "till-b"])
        .map(|((till, proxy), name)| env.start_terminal(name, till, proxy.addr(), SALES, RATE))
        .collect();
    let diagnostics = || {
        let mut s = format!("chaos seed {seed}\n");
        for p in &proxies {
            s.push_str(&format!("proxy {}: {:?}\n", p.addr(), p.stats()));
        }
        for t in &terminals {
            s.push_str(&t.tail(30));
        }
        s.push_str(&hub.tail(30));
        s
    };

    // The chaos hits a live sync: both terminals got through once.
    wait_until(
        "both terminals online",
        Duration::from_secs(60),
        || terminals.iter().all(|t| t.count("sync online") > 0),
        diagnostics,
    );
    // Faults for a while, then a long partition of both, staggered, while the terminals keep
    // selling; the first one cuts a live connection.
    std::thread::sleep(Duration::from_millis(rng.range(500, 2000)));
    wait_until(
        "a connection through each proxy",
        Duration::from_secs(60),
        || proxies.iter().all(|p| p.open_connections() > 0),
        diagnostics,
    );
    proxies[0].partition();
    std::thread::sleep(Duration::from_millis(rng.range(0, 500)));
    proxies[1].partition();
    std::thread::sleep(PARTITION);
    proxies[0].end_partition();
    std::thread::sleep(Duration::from_millis(rng.range(0, 500)));
    proxies[1].end_partition();
    // Faults go on for a while after the partition: two more destructive ones at most.
    for p in &proxies {
        p.set_faults(Faults {
            max_faults: p.stats().destructive() + 2,
            ..FAULTS
        });
    }
    std::thread::sleep(Duration::from_millis(rng.range(1500, 3000)));
    for p in &proxies {
        p.heal();
    }
    let healed = Instant::now();

    // Healed: every sale is sold and stored at the hub.
    wait_until_settled(
        &env.hub,
        &tills,
        Duration::from_secs(90),
        // Every scripted sale finished, sold or failed (a failure is reported below).
        || {
            terminals
                .iter()
                .all(|t| sale_attempts(&t.stderr()) as u64 == SALES)
        },
        diagnostics,
    );
    let caught_up = healed.elapsed();
    let stats: Vec<_> = proxies.iter().map(ChaosProxy::stats).collect();
    let mut sold = Vec::new();
    for t in terminals {
        let name = t.name.clone();
        let (status, stderr) = t.stop(Duration::from_secs(30));
        assert!(status.success(), "{name}: {status}\n{stderr}");
        let receipts = sold_receipts(&stderr);
        let failed: Vec<&str> = stderr
            .lines()
            .filter(|l| l.contains("WARN simulated sale"))
            .collect();
        assert_eq!(
            receipts.len() as u64,
            SALES,
            "{name}: scripted sales failed:\n{}",
            failed.join("\n")
        );
        sold.push(receipts);
    }
    let (status, hub_log) = hub.stop(Duration::from_secs(30));
    assert!(status.success(), "hub: {status}\n{hub_log}");
    drop(proxies);

    let tills: Vec<&std::path::Path> = tills.iter().map(|t| t.as_path()).collect();
    let receipts = assert_hub_holds_the_terminals(&env, &tills);
    // The receipts the terminals logged are among those compared.
    for ((till, sold), n) in tills.iter().zip(&sold).zip(&receipts) {
        let stored: Vec<u64> = support::receipts_of(&env.hub, support::device_id(till))
            .iter()
            .map(|r| r.number as u64)
            .collect();
        assert!(
            sold.iter().all(|r| stored.contains(r)),
            "{sold:?} vs {stored:?}"
        );
        assert!(*n as u64 >= SALES);
    }
    for s in &stats {
        eprintln!("proxy: {s:?}");
    }
    // The faults did happen: the proxies ended connections and the partitions held some.
    let destructive: u64 = stats.iter().map(|s| s.destructive() + s.cut).sum();
    assert!(
        destructive >= 2,
        "too few faults to mean anything: {stats:?}"
    );
    eprintln!(
        "seed {seed}: converged {:.1} s after healing, whole test {:.1} s",
        caught_up.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
}

//! Fetch long polling: a fetch parked at the end of a partition
//! (max_wait 10 s, min_bytes 1) returns promptly once data arrives; a fetch
//! with no data returns after roughly max_wait; fetching past the end gives
//! OFFSET_OUT_OF_RANGE.

mod common;

use std::time::{Duration, Instant};

use common::*;
use rskafka::client::error::ProtocolError;
use rskafka::client::partition::Compression;

#[test]
fn parked_fetch_wakes_up_on_produce() {
    let broker = Broker::start();
    let bs = broker.bootstrap();
    create_topic(&bs, "lp", 2);
    let rt = runtime();
    rt.block_on(async {
        // Separate clients (= separate connections) for the consumer side and
        // the producer side: Kafka serves requests on one connection in order.
        let fetch_client = rs_client(&bs).await;
        let prod_client = rs_client(&bs).await;

        for part in 0..2 {
            let fetch_pc = rs_partition(&fetch_client, "lp", part).await;
            let prod_pc = rs_partition(&prod_client, "lp", part).await;

            // Put some data in first so the parked fetch is not at offset 0.
            let warm: Vec<_> =
                (0..3).map(|i| rs_record(None, Some(format!("warm-{i}").as_bytes()), &[], now_millis())).collect();
            within(Duration::from_secs(30), "warm produce", prod_pc.produce(warm, Compression::NoCompression))
                .await
                .expect("warm-up produce");

            let started = Instant::now();
            let fetch = tokio::spawn(async move {
                let r = fetch_pc.fetch_records(3, 1..1_000_000, 10_000).await;
                (r, started.elapsed())
            });
            tokio::time::sleep(Duration::from_millis(300)).await;
            let payload = format!("wake-up-{part}");
            let rec = rs_record(Some(b"k"), Some(payload.as_bytes()), &[], now_millis());
            let offs = within(
                Duration::from_secs(10),
                "produce while a fetch is parked",
                prod_pc.produce(vec![rec.clone()], Compression::NoCompression),
            )
            .await
            .expect("produce while a fetch is parked");
            assert_eq!(offs, vec![3]);

            let (res, elapsed) =
                within(Duration::from_secs(20), "parked fetch", fetch).await.expect("fetch task panicked");
            let (recs, hw) = res.unwrap_or_else(|e| panic!("parked fetch failed: {e}"));
            assert!(
                elapsed < Duration::from_secs(5),
                "partition {part}: parked fetch (max_wait 10 s) took {elapsed:?} after data arrived at ~300 ms"
            );
            assert_eq!(recs.len(), 1, "partition {part}: parked fetch returned {recs:?}");
            assert_eq!(recs[0].offset, 3);
            assert_eq!(recs[0].record, rec, "partition {part}: record returned by the parked fetch");
            assert_eq!(hw, 4, "partition {part}: high watermark in fetch response");
        }
    });
}

#[test]
fn parked_fetches_on_two_partitions_wake_independently() {
    // Both fetches are parked at the same time on different partitions
    // (with --cores 2 these are likely on different shards).
    let broker = Broker::start();
    let bs = broker.bootstrap();
    create_topic(&bs, "lp2", 2);
    let rt = runtime();
    rt.block_on(async {
        let c0 = rs_client(&bs).await;
        let c1 = rs_client(&bs).await;
        let prod = rs_client(&bs).await;
        let f0 = rs_partition(&c0, "lp2", 0).await;
        let f1 = rs_partition(&c1, "lp2", 1).await;
        let p1 = rs_partition(&prod, "lp2", 1).await;
        let p0 = rs_partition(&prod, "lp2", 0).await;

        let t0 = Instant::now();
        let h0 = tokio::spawn(async move { (f0.fetch_records(0, 1..1_000_000, 10_000).await, t0.elapsed()) });
        let h1 = tokio::spawn(async move { (f1.fetch_records(0, 1..1_000_000, 10_000).await, t0.elapsed()) });
        tokio::time::sleep(Duration::from_millis(300)).await;

        // Only partition 1 gets data first.
        let r1 = rs_record(None, Some(b"for-p1"), &[], now_millis());
        within(Duration::from_secs(10), "produce p1", p1.produce(vec![r1.clone()], Compression::NoCompression))
            .await
            .expect("produce p1");
        let (res1, el1) = within(Duration::from_secs(20), "fetch p1", h1).await.unwrap();
        let (recs1, _) = res1.expect("fetch p1");
        assert!(el1 < Duration::from_secs(5), "fetch on partition 1 took {el1:?}");
        assert_eq!(recs1.len(), 1);
        assert_eq!(recs1[0].record, r1);
        assert!(!h0.is_finished(), "fetch on partition 0 returned although partition 0 got no data");

        tokio::time::sleep(Duration::from_millis(300)).await;
        let r0 = rs_record(None, Some(b"for-p0"), &[], now_millis());
        within(Duration::from_secs(10), "produce p0", p0.produce(vec![r0.clone()], Compression::NoCompression))
            .await
            .expect("produce p0");
        let (res0, el0) = within(Duration::from_secs(20), "fetch p0", h0).await.unwrap();
        let (recs0, _) = res0.expect("fetch p0");
        assert!(el0 < Duration::from_secs(6), "fetch on partition 0 took {el0:?}");
        assert_eq!(recs0.len(), 1);
        assert_eq!(recs0[0].record, r0);
    });
}

#[test]
fn empty_fetch_waits_about_max_wait() {
    let broker = Broker::start();
    let bs = broker.bootstrap();
    create_topic(&bs, "idle", 1);
    let rt = runtime();
    rt.block_on(async {
        let client = rs_client(&bs).await;
        let pc = rs_partition(&client, "idle", 0).await;
        let t = Instant::now();
        let (recs, hw) = within(Duration::from_secs(20), "idle fetch", pc.fetch_records(0, 1..1_000_000, 1_000))
            .await
            .expect("idle fetch");
        let el = t.elapsed();
        assert!(recs.is_empty());
        assert_eq!(hw, 0);
        assert!(
            el >= Duration::from_millis(400),
            "fetch with min_bytes=1 and max_wait=1000 ms on an empty partition returned after {el:?}; it should wait"
        );
        assert!(el < Duration::from_secs(5), "idle fetch with max_wait 1000 ms took {el:?}");
    });
}

#[test]
fn fetch_past_end_is_offset_out_of_range() {
    let broker = Broker::start();
    let bs = broker.bootstrap();
    create_topic(&bs, "oor", 1);
    let rt = runtime();
    rt.block_on(async {
        let client = rs_client(&bs).await;
        let pc = rs_partition(&client, "oor", 0).await;
        let recs: Vec<_> =
            (0..5).map(|i| rs_record(None, Some(format!("v{i}").as_bytes()), &[], now_millis())).collect();
        within(Duration::from_secs(30), "produce", pc.produce(recs, Compression::NoCompression))
            .await
            .expect("produce");

        for bad in [6i64, 100, 1_000_000, -5] {
            let err = within(Duration::from_secs(20), "fetch past end", pc.fetch_records(bad, 1..1_000_000, 100))
                .await
                .expect_err(&format!("fetch at offset {bad} (log end 5) must fail"));
            assert_eq!(rs_protocol_error(&err), Some(ProtocolError::OffsetOutOfRange), "fetch at offset {bad}: {err}");
        }

        // Fetch exactly at the log end is fine (empty result after max_wait).
        let (recs, hw) = within(Duration::from_secs(20), "fetch at end", pc.fetch_records(5, 1..1_000_000, 100))
            .await
            .expect("fetch at the log end must not be an error");
        assert!(recs.is_empty());
        assert_eq!(hw, 5);

        // Fetch in the middle of a batch returns records from that offset on
        // (rskafka filters records before the requested offset).
        let (recs, _) = within(Duration::from_secs(20), "fetch mid", pc.fetch_records(2, 1..1_000_000, 100))
            .await
            .expect("fetch at offset 2");
        let offs: Vec<i64> = recs.iter().map(|r| r.offset).collect();
        assert_eq!(offs, vec![2, 3, 4]);
    });
}

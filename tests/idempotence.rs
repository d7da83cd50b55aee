//! The idempotent producer (rdkafka `enable.idempotence=true`) through a proxy that cuts
//! every connection every 200 ms, so that responses to appended batches are lost and the
//! batches retried, while the broker is also killed with SIGKILL twice and restarted cleanly
//! once, mid-stream. The broker recognizes retried batches (its producer state is rebuilt
//! from the log at start-up) and answers with their original offsets. Afterwards every
//! partition holds each message exactly once, in the order it was sent: no duplicates, no
//! reordering, nothing lost. (Without the deduplication this test finds duplicates.)

mod common;

use std::thread;
use std::time::Duration;

use common::*;
use rdkafka::producer::Producer;

const TOPIC: &str = "idem";
const PARTITIONS: i32 = 3;
const MESSAGES: usize = 30_000;

#[test]
fn no_duplicates_no_reordering_nothing_lost_across_crashes() {
    let proxy = Proxy::start();
    let advertised = format!("PLAINTEXT://127.0.0.1:{}", proxy.port);
    let mut broker = Broker::start_with(&[("advertised.listeners", &advertised)], 2);
    proxy.target(broker.port());
    let bs = broker.bootstrap();
    // CreateTopics goes to the advertised address, the proxy; it is not retried, so the
    // proxy starts cutting only once the topic exists.
    create_topic(&bs, TOPIC, PARTITIONS);
    proxy.start_cutting();

    let producer_bs = format!("127.0.0.1:{}", proxy.port);
    let producing = thread::spawn(move || {
        let p = producer(
            &producer_bs,
            &[
                ("enable.idempotence", "true"),
                ("max.in.flight.requests.per.connection", "5"),
                ("linger.ms", "2"),
                ("batch.num.messages", "200"),
                ("message.timeout.ms", "120000"),
                ("retry.backoff.ms", "50"),
            ],
        );
        p.context().reports.lock().unwrap().clear();
        let msgs: Vec<TestMsg> = (0..MESSAGES)
            .map(|i| TestMsg {
                key: None,
                value: Some(i.to_string().into_bytes()),
                headers: vec![],
                timestamp: None,
                partition: Some((i % PARTITIONS as usize) as i32),
            })
            .collect();
        // Paced (about 6 s in all) so that the kills land mid-stream.
        for chunk in msgs.chunks(100) {
            produce_paced(&p, chunk);
            thread::sleep(Duration::from_millis(20));
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(180);
        loop {
            let _ = p.flush(Duration::from_millis(500));
            let n = p.context().reports.lock().unwrap().len();
            if n >= MESSAGES && p.in_flight_count() == 0 {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "only {n} of {MESSAGES} delivery reports in 180 s");
        }
        let reports = p.context().reports.lock().unwrap().drain(..).collect::<Vec<_>>();
        let failed: Vec<_> = reports.iter().filter(|(_, d, _)| d.is_err()).take(5).collect();
        assert!(failed.is_empty(), "deliveries failed: {failed:?}");
        reports.len()
    });

    thread::sleep(Duration::from_millis(1500));
    broker.kill9();
    broker.restart();
    thread::sleep(Duration::from_millis(1500));
    broker.kill9();
    broker.restart();
    thread::sleep(Duration::from_millis(1000));
    broker.stop();
    broker.restart();
    let delivered = producing.join().expect("producer thread");
    assert_eq!(delivered, MESSAGES);

    let bs = broker.bootstrap();
    for part in 0..PARTITIONS {
        let got = consume_all_partition(&bs, TOPIC, part);
        assert_contiguous(&got, 0, &format!("{TOPIC}/{part}"));
        let values: Vec<usize> =
            got.iter().map(|m| String::from_utf8(m.value.clone().unwrap()).unwrap().parse().unwrap()).collect();
        let expected: Vec<usize> = (part as usize..MESSAGES).step_by(PARTITIONS as usize).collect();
        if values != expected {
            let dup = values.windows(2).position(|w| w[1] <= w[0]);
            panic!(
                "partition {part}: {} messages, {} expected; first out-of-order or duplicate at index {dup:?}",
                values.len(),
                expected.len()
            );
        }
    }
}

/// Enqueues messages with their index as the delivery id, polling as it goes.
fn produce_paced(p: &TestProducer, msgs: &[TestMsg]) {
    for m in msgs {
        let id: usize = std::str::from_utf8(m.value.as_deref().unwrap()).unwrap().parse().unwrap();
        send_one(p, TOPIC, id, m);
    }
    p.poll(Duration::ZERO);
}

/// A TCP proxy to the broker that, once `start_cutting` is called, cuts every connection it
/// carries every 200 ms.
struct Proxy {
    port: u16,
    target: std::sync::Arc<std::sync::atomic::AtomicU16>,
    cutting: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Proxy {
    fn start() -> Proxy {
        use std::net::{Shutdown, TcpListener, TcpStream};
        use std::sync::atomic::{AtomicBool, AtomicU16, Ordering};
        use std::sync::{Arc, Mutex};
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let target = Arc::new(AtomicU16::new(0));
        let cutting = Arc::new(AtomicBool::new(false));
        let live: Arc<Mutex<Vec<TcpStream>>> = Arc::new(Mutex::new(Vec::new()));
        let (t, l) = (target.clone(), live.clone());
        thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let Ok(server) = TcpStream::connect(("127.0.0.1", t.load(Ordering::SeqCst))) else { continue };
                let _ = client.set_nodelay(true);
                let _ = server.set_nodelay(true);
                l.lock().unwrap().extend([client.try_clone().unwrap(), server.try_clone().unwrap()]);
                for (mut from, mut to) in [(client.try_clone().unwrap(), server.try_clone().unwrap()), (server, client)]
                {
                    thread::spawn(move || {
                        let _ = std::io::copy(&mut from, &mut to);
                        let _ = to.shutdown(Shutdown::Both);
                        let _ = from.shutdown(Shutdown::Both);
                    });
                }
            }
        });
        let armed = cutting.clone();
        thread::spawn(move || loop {
            thread::sleep(Duration::from_millis(200));
            if !armed.load(Ordering::SeqCst) {
                continue;
            }
            for s in live.lock().unwrap().drain(..) {
                let _ = s.shutdown(Shutdown::Both);
            }
        });
        Proxy { port, target, cutting }
    }

    fn start_cutting(&self) {
        self.cutting.store(true, std::sync::atomic::Ordering::SeqCst);
    }

    fn target(&self, port: u16) {
        self.target.store(port, std::sync::atomic::Ordering::SeqCst);
    }
}

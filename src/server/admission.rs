//! Connection admission: `max.connections` and `max.connections.per.ip`, counted across all
//! shards (each shard accepts on its own SO_REUSEPORT socket, so the counts are shared).
//! Touched once when a connection opens and once when it closes, never per request.
//! Also the connection creation rates (KIP-612): `max.connection.creation.rate` for the
//! broker and the `connection_creation_rate` quota per ip.
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use crate::security::quota::{now_ms, Rate};

#[derive(Default)]
pub struct Admission {
    open: AtomicU32,
    per_ip: Mutex<HashMap<IpAddr, u32>>,
    creation: Mutex<Rate>,
    creation_per_ip: Mutex<HashMap<IpAddr, Rate>>,
}

/// Why a connection was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// `max.connections` are open.
    Broker(u32),
    /// `max.connections.per.ip` are open from this address.
    PerIp(u32),
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::Broker(n) => write!(f, "max.connections ({n}) reached"),
            Refusal::PerIp(n) => write!(f, "max.connections.per.ip ({n}) reached"),
        }
    }
}

/// An admitted connection; gives its place back when dropped.
pub struct Ticket {
    admission: Arc<Admission>,
    ip: IpAddr,
}

impl Admission {
    pub fn open_connections(&self) -> u32 {
        self.open.load(Ordering::Relaxed)
    }

    /// A new connection against `max.connection.creation.rate` (per second): how long to
    /// wait before accepting more (Kafka's acceptor waits the same way).
    pub fn creation_throttle(&self, rate: f64) -> u64 {
        self.creation.lock().unwrap_or_else(|p| p.into_inner()).record_and_throttle(1.0, rate, now_ms())
    }

    /// A new connection from `ip` against its `connection_creation_rate` quota: how long
    /// to hold it before closing it (0: serve it).
    pub fn ip_creation_throttle(&self, ip: IpAddr, rate: f64) -> u64 {
        let mut per_ip = self.creation_per_ip.lock().unwrap_or_else(|p| p.into_inner());
        per_ip.entry(ip).or_default().record_and_throttle(1.0, rate, now_ms())
    }

    pub fn admit(self: &Arc<Self>, ip: IpAddr, max: u32, max_per_ip: u32) -> Result<Ticket, Refusal> {
        let mut per_ip = self.per_ip.lock().unwrap_or_else(|p| p.into_inner());
        if self.open.load(Ordering::Relaxed) >= max {
            return Err(Refusal::Broker(max));
        }
        let n = per_ip.entry(ip).or_insert(0);
        if *n >= max_per_ip {
            return Err(Refusal::PerIp(max_per_ip));
        }
        *n += 1;
        self.open.fetch_add(1, Ordering::Relaxed);
        Ok(Ticket { admission: self.clone(), ip })
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let mut per_ip = self.admission.per_ip.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = per_ip.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                per_ip.remove(&self.ip);
            }
        }
        self.admission.open.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_per_broker_and_per_ip_and_places_come_back() {
        let a = Arc::new(Admission::default());
        let (one, two): (IpAddr, IpAddr) = ("127.0.0.1".parse().unwrap(), "127.0.0.2".parse().unwrap());
        let t1 = a.admit(one, 3, 2).unwrap();
        let _t2 = a.admit(one, 3, 2).unwrap();
        assert_eq!(a.admit(one, 3, 2).err(), Some(Refusal::PerIp(2)));
        let _t3 = a.admit(two, 3, 2).unwrap();
        assert_eq!(a.admit(two, 3, 2).err(), Some(Refusal::Broker(3)));
        drop(t1);
        assert_eq!(a.open_connections(), 2);
        let _t4 = a.admit(one, 3, 2).unwrap();
    }
}

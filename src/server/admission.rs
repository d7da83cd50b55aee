//! Connection admission: `max.connections` and `max.connections.per.ip`, counted across all
//! shards (each shard accepts on its own SO_REUSEPORT socket, so the counts are shared).
//! Touched once when a connection opens and once when it closes, never per request.
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

#[derive(Default)]
pub struct Admission {
    open: AtomicU32,
    per_ip: Mutex<HashMap<IpAddr, u32>>,
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

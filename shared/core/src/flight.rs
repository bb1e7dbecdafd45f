//! Single flight: concurrent asks for the same key share one answer while it is being made.
//! Nothing is kept once it is made (caching is the caller's business).

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use tokio::sync::OnceCell;

/// In-flight work by key.
pub struct SingleFlight<V> {
    in_flight: Mutex<HashMap<String, Arc<OnceCell<V>>>>,
}

impl<V> Default for SingleFlight<V> {
    fn default() -> Self {
        SingleFlight {
            in_flight: Mutex::new(HashMap::new()),
        }
    }
}

impl<V> std::fmt::Debug for SingleFlight<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SingleFlight").finish_non_exhaustive()
    }
}

impl<V: Clone> SingleFlight<V> {
    /// The answer for `key`: made by `make` unless another caller is making it now, in which
    /// case theirs. If the caller making it goes away, a waiting one takes over.
    pub async fn run<F: Future<Output = V>>(&self, key: &str, make: impl FnOnce() -> F) -> V {
        let cell = {
            let mut in_flight = self.lock();
            Arc::clone(in_flight.entry(key.to_string()).or_default())
        };
        let value = cell.get_or_init(make).await.clone();
        let mut in_flight = self.lock();
        if in_flight.get(key).is_some_and(|c| Arc::ptr_eq(c, &cell)) {
            in_flight.remove(key);
        }
        value
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<OnceCell<V>>>> {
        // The map is only ever changed by whole inserts and removes: still consistent.
        self.in_flight.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Keys remembered at most (see [`Remembered`]).
pub const MAX_CACHED: usize = 10_000;

/// Keys remembered until a time (Unix seconds), at most [`MAX_CACHED`] of them: when full,
/// expired ones go, and if none has expired it starts again empty (memory stays bounded).
#[derive(Debug, Default)]
pub struct Remembered(Mutex<HashMap<String, u64>>);

impl Remembered {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, u64>> {
        // Only whole inserts and removes: a poisoned map is still consistent.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn holds(&self, key: &str, now: u64) -> bool {
        self.lock().get(key).is_some_and(|until| now < *until)
    }

    pub fn keep(&self, key: String, until: u64, now: u64) {
        let mut map = self.lock();
        if map.len() >= MAX_CACHED {
            map.retain(|_, u| now < *u);
            if map.len() >= MAX_CACHED {
                map.clear();
            }
        }
        map.insert(key, until);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_asks_share_one_answer_and_later_ones_ask_again() {
        let flight = Arc::new(SingleFlight::<usize>::default());
        let made = Arc::new(AtomicUsize::new(0));
        let ask = |key: &'static str| {
            let (flight, made) = (Arc::clone(&flight), Arc::clone(&made));
            tokio::spawn(async move {
                flight
                    .run(key, || async {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        made.fetch_add(1, Ordering::SeqCst) + 1
                    })
                    .await
            })
        };
        let tasks: Vec<_> = (0..20).map(|_| ask("a")).collect();
        for t in tasks {
            assert_eq!(t.await.unwrap(), 1);
        }
        assert_eq!(made.load(Ordering::SeqCst), 1);
        assert_eq!(
            ask("a").await.unwrap(),
            2,
            "nothing is kept after the flight"
        );
        assert_eq!(ask("b").await.unwrap(), 3);
        assert!(flight.lock().is_empty());
    }

    #[test]
    fn remembered_keys_expire_and_stay_bounded() {
        let r = Remembered::default();
        r.keep("a".into(), 10, 0);
        assert!(r.holds("a", 9));
        assert!(!r.holds("a", 10));
        for i in 0..MAX_CACHED {
            r.keep(format!("k{i}"), 100, 20);
        }
        assert!(r.lock().len() <= MAX_CACHED);
        assert!(!r.holds("a", 20), "expired ones went first");
        r.keep("last".into(), 100, 20);
        assert!(r.holds("last", 20));
        assert!(r.lock().len() <= MAX_CACHED);
    }
}

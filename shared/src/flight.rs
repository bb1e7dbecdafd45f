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
}

//! A handle that stops nodes: [`Shutdown::trigger`] wakes every node that runs with it at once.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

type Wake = Box<dyn Fn() + Send>;

/// Stops the nodes that [`run`](super::run) with it (clones share one trigger). Triggering wakes a
/// waiting node at once (it sends the node an event), so the node returns after the step it is
/// taking, not after a polling interval. Once triggered it stays triggered: a node started with it
/// later returns at once.
#[derive(Clone, Default)]
pub struct Shutdown(Arc<Inner>);

#[derive(Default)]
struct Inner {
    triggered: AtomicBool,
    /// What wakes each node running with this handle, by registration number.
    wakers: Mutex<(u64, HashMap<u64, Wake>)>,
}

impl Shutdown {
    pub fn new() -> Self {
        Shutdown::default()
    }

    /// Stops the nodes running with this handle, and those started with it later.
    pub fn trigger(&self) {
        self.0.triggered.store(true, Ordering::SeqCst);
        for wake in self.0.wakers.lock().expect("wakers lock").1.values() {
            wake();
        }
    }

    pub fn is_triggered(&self) -> bool {
        self.0.triggered.load(Ordering::SeqCst)
    }

    /// Calls `wake` on [`trigger`](Self::trigger) until the returned guard is dropped. The caller
    /// checks [`is_triggered`](Self::is_triggered) after registering: a trigger before it is seen
    /// there, one after it calls `wake`.
    pub(super) fn on_trigger(&self, wake: impl Fn() + Send + 'static) -> Registered<'_> {
        let mut wakers = self.0.wakers.lock().expect("wakers lock");
        let n = wakers.0;
        wakers.0 += 1;
        wakers.1.insert(n, Box::new(wake));
        Registered(self, n)
    }
}

impl std::fmt::Debug for Shutdown {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shutdown")
            .field("triggered", &self.is_triggered())
            .finish()
    }
}

/// A node's waker, removed when the node returns.
pub(super) struct Registered<'a>(&'a Shutdown, u64);

impl Drop for Registered<'_> {
    fn drop(&mut self) {
        self.0
             .0
            .wakers
            .lock()
            .expect("wakers lock")
            .1
            .remove(&self.1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    #[test]
    fn trigger_wakes_the_registered_and_stays_set() {
        let s = Shutdown::new();
        let woken = Arc::new(AtomicUsize::new(0));
        let w = woken.clone();
        let guard = s.on_trigger(move || {
            w.fetch_add(1, Ordering::SeqCst);
        });
        drop(guard);
        let w = woken.clone();
        let clone = s.clone();
        let _guard = clone.on_trigger(move || {
            w.fetch_add(1, Ordering::SeqCst);
        });
        assert!(!s.is_triggered());
        s.trigger();
        assert!(clone.is_triggered());
        // Only the waker still registered ran.
        assert_eq!(woken.load(Ordering::SeqCst), 1);
    }
}

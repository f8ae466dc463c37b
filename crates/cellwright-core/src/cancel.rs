//! A cancellation token without an async runtime: cancelling a parent cancels its children.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};

use event_listener::Event;

/// Cooperative cancellation. Cheap to clone; every clone observes the same state.
///
/// Long computations call [`CancelToken::is_cancelled`] between chunks; async code awaits
/// [`CancelToken::cancelled`].
#[derive(Clone, Default)]
pub struct CancelToken {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    cancelled: AtomicBool,
    event: Event,
    children: Mutex<Vec<Weak<Inner>>>,
}

impl fmt::Debug for CancelToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CancelToken")
            .field("cancelled", &self.is_cancelled())
            .finish()
    }
}

impl CancelToken {
    pub fn new() -> Self {
        Self::default()
    }

    /// A token that is cancelled when `self` is, and can also be cancelled on its own.
    pub fn child(&self) -> Self {
        let child = Self::new();
        if self.is_cancelled() {
            child.cancel();
            return child;
        }
        let mut children = lock(&self.inner.children);
        children.retain(|weak| weak.strong_count() > 0);
        children.push(Arc::downgrade(&child.inner));
        drop(children);
        // The parent may have been cancelled between the check and the push.
        if self.is_cancelled() {
            child.cancel();
        }
        child
    }

    pub fn cancel(&self) {
        cancel_inner(&self.inner);
    }

    pub fn is_cancelled(&self) -> bool {
        self.inner.cancelled.load(Ordering::Acquire)
    }

    /// Completes once the token is cancelled.
    pub async fn cancelled(&self) {
        loop {
            if self.is_cancelled() {
                return;
            }
            let listener = self.inner.event.listen();
            if self.is_cancelled() {
                return;
            }
            listener.await;
        }
    }
}

fn cancel_inner(inner: &Inner) {
    if inner.cancelled.swap(true, Ordering::AcqRel) {
        return;
    }
    inner.event.notify(usize::MAX);
    let children = std::mem::take(&mut *lock(&inner.children));
    for child in children.iter().filter_map(Weak::upgrade) {
        cancel_inner(&child);
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A poisoned list of weak pointers is still a valid list.
    mutex.lock().unwrap_or_else(|poison| poison.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parent_cancels_children_but_not_the_reverse() {
        let parent = CancelToken::new();
        let child = parent.child();
        let grandchild = child.child();
        child.cancel();
        assert!(!parent.is_cancelled());
        assert!(grandchild.is_cancelled());
        let other = parent.child();
        parent.cancel();
        assert!(other.is_cancelled());
        assert!(parent.child().is_cancelled());
    }

    #[test]
    fn cancelled_future_completes() {
        let token = CancelToken::new();
        let waiter = token.clone();
        let handle = std::thread::spawn(move || futures::executor::block_on(waiter.cancelled()));
        token.cancel();
        handle.join().unwrap();
    }
}

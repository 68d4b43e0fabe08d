//! Per-conversation turns: the owner executor runs one command of a conversation at a time, in
//! arrival order, even when a command awaits something (the store, the queue owner, Redis).
//!
//! Lives on: every executor, for the conversations it owns. An entry exists only while some
//! command holds or waits for the turn, so idle conversations cost nothing here.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use glommio::sync::{Semaphore, StaticPermit};

/// The turns of one executor's conversations.
#[derive(Debug, Default)]
pub struct Turns {
    map: Rc<RefCell<HashMap<String, Rc<Semaphore>>>>,
}

/// Holding a conversation's turn; the next waiter (FIFO) goes when it drops.
#[derive(Debug)]
pub struct Turn {
    // Field order matters: the permit is released before the map entry is looked at.
    _permit: Option<StaticPermit>,
    sem: Rc<Semaphore>,
    id: String,
    map: Rc<RefCell<HashMap<String, Rc<Semaphore>>>>,
}

impl Turns {
    /// Waits for `id`'s turn (waiters are served in arrival order).
    pub async fn take(&self, id: &str) -> Turn {
        let sem = self
            .map
            .borrow_mut()
            .entry(id.to_owned())
            .or_insert_with(|| Rc::new(Semaphore::new(1)))
            .clone();
        // The semaphore is never closed, so acquiring cannot fail; a failure would only mean
        // running without the turn, which is still correct for the store (versions are checked).
        let permit = sem.acquire_static_permit(1).await.ok();
        Turn {
            _permit: permit,
            sem,
            id: id.to_owned(),
            map: self.map.clone(),
        }
    }

    /// Conversations with a command running or waiting.
    pub fn busy(&self) -> usize {
        self.map.borrow().len()
    }
}

impl Drop for Turn {
    fn drop(&mut self) {
        self._permit.take();
        // Only the map and this turn hold the semaphore: nobody waits, forget the entry.
        if Rc::strong_count(&self.sem) == 2 {
            self.map.borrow_mut().remove(&self.id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell as StdRefCell;

    #[test]
    fn turns_are_fifo_and_entries_go_away() {
        glommio::LocalExecutorBuilder::default()
            .spawn(|| async {
                let turns = Rc::new(Turns::default());
                let order = Rc::new(StdRefCell::new(Vec::new()));
                let first = turns.take("c").await;
                let mut tasks = Vec::new();
                for i in 0..3 {
                    let (turns, order) = (turns.clone(), order.clone());
                    tasks.push(glommio::spawn_local(async move {
                        let _t = turns.take("c").await;
                        order.borrow_mut().push(i);
                        futures_lite::future::yield_now().await;
                    }));
                }
                futures_lite::future::yield_now().await;
                assert!(order.borrow().is_empty());
                drop(first);
                for t in tasks {
                    t.await;
                }
                assert_eq!(*order.borrow(), vec![0, 1, 2]);
                assert_eq!(turns.busy(), 0);
            })
            .unwrap()
            .join()
            .unwrap();
    }
}

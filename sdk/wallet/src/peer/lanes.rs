//! Per-wallet lanes: a wallet's operations run one at a time, in the order
//! their requests arrived, while other wallets' operations run alongside.
//!
//! The order is fixed when a request is *queued* ([`Lanes::queue`], called
//! by the reader once per line, in arrival order), not when its task first
//! runs: tasks spawned back to back may start in any order, so a lock taken
//! inside them would not keep the order the protocol promises.
//!
//! Each place in a lane holds the sending half of a oneshot channel and the
//! receiving half of its predecessor's. Waiting for the turn is waiting for
//! the predecessor's sender to drop, which happens when its op ends,
//! however it ends (an answer, an error, or a panic unwinding the task).

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, MutexGuard, PoisonError},
};

use tokio::sync::oneshot;

/// The lanes of one peer, by wallet name.
#[derive(Debug, Default)]
pub(crate) struct Lanes {
    map: Arc<Mutex<LaneMap>>,
}

#[derive(Debug, Default)]
struct LaneMap {
    next_ticket: u64,
    /// Per wallet with an op queued or running: the last place queued. Its
    /// entry goes when that place is dropped with nothing queued behind it,
    /// so the map holds only busy wallets.
    tails: HashMap<String, Tail>,
}

#[derive(Debug)]
struct Tail {
    ticket: u64,
    /// Resolves when the last queued op has ended.
    ended: oneshot::Receiver<()>,
}

/// One op's place in its wallet's lane: wait for [`Place::turn`], hold the
/// place while the op runs, drop it to let the next op in the lane go.
///
/// Dropping a place before its turn lets the ops behind it go early; the
/// peer only does that when the process is exiting.
#[derive(Debug)]
pub(crate) struct Place {
    map: Arc<Mutex<LaneMap>>,
    wallet: String,
    ticket: u64,
    before: Option<oneshot::Receiver<()>>,
    /// Dropped with the place, which wakes the next op in the lane.
    _ended: oneshot::Sender<()>,
}

impl Lanes {
    /// Queues one op on `wallet`, behind every op already queued on it.
    pub(crate) fn queue(&self, wallet: &str) -> Place {
        let (ended_tx, ended_rx) = oneshot::channel();
        let mut map = lock(&self.map);
        map.next_ticket += 1;
        let ticket = map.next_ticket;
        let before = map
            .tails
            .insert(
                wallet.to_owned(),
                Tail {
                    ticket,
                    ended: ended_rx,
                },
            )
            .map(|tail| tail.ended);
        Place {
            map: Arc::clone(&self.map),
            wallet: wallet.to_owned(),
            ticket,
            before,
            _ended: ended_tx,
        }
    }

    /// How many wallets have an op queued or running.
    #[cfg(test)]
    fn busy(&self) -> usize {
        lock(&self.map).tails.len()
    }
}

impl Place {
    /// Waits until every op queued before this one on its wallet has ended.
    pub(crate) async fn turn(&mut self) {
        if let Some(before) = self.before.take() {
            // An error means the sender was dropped, which is how an op
            // says it has ended; nothing is ever sent.
            let _ = before.await;
        }
    }
}

impl Drop for Place {
    fn drop(&mut self) {
        let mut map = lock(&self.map);
        if map
            .tails
            .get(&self.wallet)
            .is_some_and(|tail| tail.ticket == self.ticket)
        {
            map.tails.remove(&self.wallet);
        }
    }
}

fn lock(map: &Mutex<LaneMap>) -> MutexGuard<'_, LaneMap> {
    // Nothing panics while the lock is held, and the map stays consistent
    // at every step anyway, so a poisoned lock is simply taken over.
    map.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// Runs `count` ops queued on `wallet` in queue order, each recording its
    /// start and end in `log`; the first ops sleep longest, so any op that
    /// did not wait its turn would finish out of order.
    async fn run_queued(lanes: &Lanes, wallet: &str, count: u64, log: &Arc<Mutex<Vec<String>>>) {
        let mut tasks = Vec::new();
        for i in 0..count {
            let mut place = lanes.queue(wallet);
            let log = Arc::clone(log);
            let name = format!("{wallet}{i}");
            // Spawned in reverse order of queueing: the order must come
            // from the queue, not from which task starts first.
            tasks.push(async move {
                place.turn().await;
                lock_log(&log).push(format!("start {name}"));
                tokio::time::sleep(Duration::from_millis(10 * (count - i))).await;
                lock_log(&log).push(format!("end {name}"));
                drop(place);
            });
        }
        let handles: Vec<_> = tasks.into_iter().rev().map(tokio::spawn).collect();
        for handle in handles {
            handle.await.unwrap();
        }
    }

    fn lock_log(log: &Mutex<Vec<String>>) -> MutexGuard<'_, Vec<String>> {
        log.lock().unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn ops_on_one_wallet_run_one_at_a_time_in_queue_order() {
        let lanes = Lanes::default();
        let log = Arc::new(Mutex::new(Vec::new()));
        run_queued(&lanes, "w", 4, &log).await;
        let expected: Vec<String> = (0..4)
            .flat_map(|i| [format!("start w{i}"), format!("end w{i}")])
            .collect();
        assert_eq!(*lock_log(&log), expected);
        assert_eq!(lanes.busy(), 0, "an idle lane is forgotten");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn ops_on_different_wallets_do_not_wait_for_each_other() {
        let lanes = Lanes::default();
        let mut slow = lanes.queue("a");
        let mut fast = lanes.queue("b");
        slow.turn().await;
        // `a` still holds its place, and `b` gets its turn anyway.
        tokio::time::timeout(Duration::from_secs(5), fast.turn())
            .await
            .expect("`b` does not wait for `a`");
        assert_eq!(lanes.busy(), 2);
        drop((slow, fast));
        assert_eq!(lanes.busy(), 0);
    }

    #[tokio::test]
    async fn an_op_that_panics_still_passes_the_turn_on() {
        let lanes = Lanes::default();
        let mut first = lanes.queue("w");
        let mut second = lanes.queue("w");
        let crashed = tokio::spawn(async move {
            first.turn().await;
            panic!("the op failed");
        });
        assert!(crashed.await.is_err());
        tokio::time::timeout(Duration::from_secs(5), second.turn())
            .await
            .expect("the turn passes when the op before panics");
    }
}

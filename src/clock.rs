//! Deadlines that cannot overflow. `Instant + Duration` panics when the sum
//! does not fit (a configured `1e30` s, a `Retry-After` of 2^64-1); every
//! deadline in the agent is made here instead.

use std::collections::VecDeque;
use std::sync::mpsc::{RecvTimeoutError, TrySendError};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// `t + d`, or the latest instant the platform can represent past `t` when
/// the sum overflows: a wait that long is "never" either way.
pub fn after(t: Instant, d: Duration) -> Instant {
    let mut d = d;
    loop {
        if let Some(x) = t.checked_add(d) {
            return x;
        }
        // Halving reaches a representable sum in at most ~100 steps (d = 0 always fits).
        d /= 2;
    }
}

/// `Instant::now() + d`, without the overflow.
pub fn from_now(d: Duration) -> Instant {
    after(Instant::now(), d)
}

/// Milliseconds since the Unix epoch (0 for a clock set before it).
pub fn unix_ms(t: std::time::SystemTime) -> u64 {
    t.duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// A bounded queue from other threads to the loop whose timed wait reads
/// the clock once (the futex deadline). `std::sync::mpsc`'s `recv_timeout`
/// reads it four to six times a wait, and where the clocksource has no vDSO
/// read (hpet, often under virtualisation) each read is a syscall.
pub fn channel<T>(bound: usize) -> (Sender<T>, Receiver<T>) {
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            queue: VecDeque::new(),
            senders: 1,
            receiver: true,
        }),
        bound: bound.max(1),
        filled: Condvar::new(),
        emptied: Condvar::new(),
    });
    (Sender(shared.clone()), Receiver(shared))
}

struct Shared<T> {
    state: Mutex<State<T>>,
    bound: usize,
    /// Signalled when a message arrives or the last sender goes.
    filled: Condvar,
    /// Signalled when a message is taken or the receiver goes.
    emptied: Condvar,
}

struct State<T> {
    queue: VecDeque<T>,
    senders: usize,
    receiver: bool,
}

impl<T> Shared<T> {
    /// The state; a thread that panicked holding it left it consistent
    /// (every change is a single push, pop or count).
    fn lock(&self) -> MutexGuard<'_, State<T>> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

pub struct Sender<T>(Arc<Shared<T>>);

impl<T> Sender<T> {
    /// Queues `msg` unless the queue is full or the receiver gone.
    pub fn try_send(&self, msg: T) -> Result<(), TrySendError<T>> {
        let mut s = self.0.lock();
        if !s.receiver {
            return Err(TrySendError::Disconnected(msg));
        }
        if s.queue.len() >= self.0.bound {
            return Err(TrySendError::Full(msg));
        }
        s.queue.push_back(msg);
        self.0.filled.notify_one();
        Ok(())
    }

    /// Queues `msg`, waiting for room; `Err(msg)` when the receiver is gone.
    pub fn send(&self, msg: T) -> Result<(), T> {
        let mut s = self.0.lock();
        while s.receiver && s.queue.len() >= self.0.bound {
            s = self.0.emptied.wait(s).unwrap_or_else(|e| e.into_inner());
        }
        if !s.receiver {
            return Err(msg);
        }
        s.queue.push_back(msg);
        self.0.filled.notify_one();
        Ok(())
    }
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Sender<T> {
        self.0.lock().senders += 1;
        Sender(self.0.clone())
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        let mut s = self.0.lock();
        s.senders -= 1;
        if s.senders == 0 {
            self.0.filled.notify_all();
        }
    }
}

pub struct Receiver<T>(Arc<Shared<T>>);

impl<T> Receiver<T> {
    /// The next message, waiting at most `timeout` for one (and returning
    /// early, empty-handed, on a spurious wake-up: the loop reads its clock
    /// and waits again). `Disconnected` once every sender is gone and the
    /// queue is empty.
    pub fn recv_timeout(&self, timeout: Duration) -> Result<T, RecvTimeoutError> {
        let mut s = self.0.lock();
        if s.queue.is_empty() && s.senders > 0 {
            s = match self.0.filled.wait_timeout(s, timeout) {
                Ok((s, _)) => s,
                Err(e) => e.into_inner().0,
            };
        }
        match s.queue.pop_front() {
            Some(msg) => {
                self.0.emptied.notify_one();
                Ok(msg)
            }
            None if s.senders == 0 => Err(RecvTimeoutError::Disconnected),
            None => Err(RecvTimeoutError::Timeout),
        }
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        self.0.lock().receiver = false;
        self.0.emptied.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overflow_saturates_instead_of_panicking() {
        let now = Instant::now();
        assert_eq!(
            after(now, Duration::from_secs(1)),
            now + Duration::from_secs(1)
        );
        let far = after(now, Duration::MAX);
        assert!(far > now + Duration::from_secs(86_400 * 365));
        assert!(from_now(Duration::from_secs(u64::MAX)) > now);
        assert_eq!(after(now, Duration::ZERO), now);
    }
}

#[cfg(test)]
mod channel_tests {
    use super::*;

    #[test]
    fn messages_arrive_in_order_and_a_full_queue_refuses() {
        let (tx, rx) = channel(2);
        tx.try_send(1).unwrap();
        tx.send(2).unwrap();
        assert!(matches!(tx.try_send(3), Err(TrySendError::Full(3))));
        assert_eq!(rx.recv_timeout(Duration::from_secs(5)), Ok(1));
        assert_eq!(rx.recv_timeout(Duration::from_secs(5)), Ok(2));
        assert_eq!(
            rx.recv_timeout(Duration::from_millis(1)),
            Err(RecvTimeoutError::Timeout)
        );
    }

    #[test]
    fn a_waiting_receiver_is_woken_and_told_when_the_senders_are_gone() {
        let (tx, rx) = channel(1);
        let tx2 = tx.clone();
        let t = std::thread::spawn(move || {
            tx2.send(7).unwrap();
            // Waits for room until the receiver takes the first.
            tx2.send(8).unwrap();
        });
        let mut got = Vec::new();
        while got.len() < 2 {
            if let Ok(v) = rx.recv_timeout(Duration::from_secs(60)) {
                got.push(v);
            }
        }
        t.join().unwrap();
        assert_eq!(got, [7, 8]);
        drop(tx);
        assert_eq!(
            rx.recv_timeout(Duration::from_secs(60)),
            Err(RecvTimeoutError::Disconnected)
        );
    }

    #[test]
    fn a_sender_is_told_when_the_receiver_is_gone() {
        let (tx, rx) = channel(1);
        tx.send(1).unwrap();
        let waiting = {
            let tx = tx.clone();
            std::thread::spawn(move || tx.send(2))
        };
        drop(rx);
        assert_eq!(waiting.join().unwrap(), Err(2));
        assert!(matches!(tx.try_send(3), Err(TrySendError::Disconnected(3))));
    }
}

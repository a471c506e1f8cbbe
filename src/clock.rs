//! Deadlines that cannot overflow. `Instant + Duration` panics when the sum
//! does not fit (a configured `1e30` s, a `Retry-After` of 2^64-1); every
//! deadline in the agent is made here instead.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU32, Ordering};
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
/// no clock (a futex wait with a relative timeout). `std::sync::mpsc`'s
/// `recv_timeout` reads it four to six times a wait, and where the
/// clocksource has no vDSO read (hpet, often under virtualisation) each
/// read is a syscall.
pub fn channel<T>(bound: usize) -> (Sender<T>, Receiver<T>) {
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            queue: VecDeque::new(),
            senders: 1,
            receiver: true,
        }),
        bound: bound.max(1),
        signal: AtomicU32::new(0),
        emptied: Condvar::new(),
    });
    (Sender(shared.clone()), Receiver(shared))
}

struct Shared<T> {
    state: Mutex<State<T>>,
    bound: usize,
    /// Moved on when a message arrives or the last sender goes: the word
    /// the receiver's futex waits on.
    signal: AtomicU32,
    /// Signalled when a message is taken or the receiver goes.
    emptied: Condvar,
}

struct State<T> {
    queue: VecDeque<T>,
    senders: usize,
    receiver: bool,
}

impl<T> Shared<T> {
    /// Tells the receiver (after the change is made, under the lock or not).
    fn signal(&self) {
        self.signal.fetch_add(1, Ordering::Release);
        futex_wake(&self.signal);
    }

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
        drop(s);
        self.0.signal();
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
        drop(s);
        self.0.signal();
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
            drop(s);
            self.0.signal();
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
        // Read before the queue is looked at: a message queued after the
        // look has moved it on, and the wait returns at once.
        let seen = self.0.signal.load(Ordering::Acquire);
        let idle = {
            let s = self.0.lock();
            s.queue.is_empty() && s.senders > 0
        };
        if idle {
            futex_wait(&self.0.signal, seen, timeout);
        }
        let mut s = self.0.lock();
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

/// Sleeps while `word` holds `seen`, at most `timeout` (FUTEX_WAIT takes a
/// relative time: no clock is read here), or until [`futex_wake`]. Returns
/// early on a signal or a spurious wake-up; the caller looks again.
fn futex_wait(word: &AtomicU32, seen: u32, timeout: Duration) {
    let t = libc::timespec {
        tv_sec: timeout.as_secs().min(i32::MAX as u64) as _,
        tv_nsec: timeout.subsec_nanos().into(),
    };
    // SAFETY: FUTEX_WAIT reads the aligned u32 behind `word` (alive for the
    // call) and the timespec on this stack; it writes neither.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAIT | libc::FUTEX_PRIVATE_FLAG,
            seen,
            &t as *const libc::timespec,
        )
    };
}

/// Wakes the thread waiting on `word` in [`futex_wait`], if any.
fn futex_wake(word: &AtomicU32) {
    // SAFETY: FUTEX_WAKE only uses the address of the u32 behind `word`
    // (alive for the call) to find its waiters; it reads or writes no memory.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAKE | libc::FUTEX_PRIVATE_FLAG,
            1,
        )
    };
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

//! SIGTERM (the kubelet deleting the pod) and SIGINT for the init steps: a step ends early
//! only by dropping its work, which cleans up after itself, or by stopping at a safe point.

use std::time::Duration;

use tokio::signal::unix::{Signal, SignalKind, signal};

/// The signal that ended a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Interrupted {
    /// `SIGTERM` or `SIGINT`.
    pub name: &'static str,
    /// The conventional exit code, 128 + the signal's number.
    pub code: u8,
}

/// SIGTERM and SIGINT handlers, installed before the work they guard starts: a signal in
/// between would otherwise end the process the default way, with nothing cleaned up.
pub struct Signals(Option<(Signal, Signal)>);

impl Signals {
    pub fn install() -> Self {
        match (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) {
            (Ok(term), Ok(int)) => Self(Some((term, int))),
            _ => Self(None),
        }
    }

    /// Runs `fut` unless a signal arrives first; then `fut` is dropped — cleaning up after
    /// itself — and the signal is returned.
    pub async fn until<T>(mut self, fut: impl Future<Output = T>) -> Result<T, Interrupted> {
        let Some((term, int)) = &mut self.0 else {
            return Ok(fut.await);
        };
        tokio::select! {
            out = fut => Ok(out),
            _ = term.recv() => Err(Interrupted { name: "SIGTERM", code: 143 }),
            _ = int.recv() => Err(Interrupted { name: "SIGINT", code: 130 }),
        }
    }
}

/// [`Signals::until`] for work that has not started yet (a future does nothing until polled).
pub async fn until_signal<T>(fut: impl Future<Output = T>) -> Result<T, Interrupted> {
    Signals::install().until(fut).await
}

/// How a step that stops at safe points ended.
#[derive(Debug)]
pub enum Stopped<T> {
    /// It finished without a signal.
    Finished(T),
    /// A signal arrived and the step stopped at a safe point (or had finished first).
    AtSafePoint(Interrupted, T),
    /// A signal arrived and the step did not reach a safe point within the grace period: it
    /// is abandoned, which is as safe as a crash.
    Abandoned(Interrupted),
}

/// Runs blocking `work` on its own thread. On a signal it sets the flag `work` watches and
/// waits up to `grace` for it to stop at its next safe point.
pub async fn run_stoppable<T: Send + 'static>(
    work: impl FnOnce(&std::sync::atomic::AtomicBool) -> T + Send + 'static,
    grace: Duration,
) -> Stopped<T> {
    use std::sync::{Arc, atomic::AtomicBool, atomic::Ordering};
    let signals = Signals::install();
    let stop = Arc::new(AtomicBool::new(false));
    let mut task = tokio::task::spawn_blocking({
        let stop = stop.clone();
        move || work(&stop)
    });
    let joined = |j: Result<T, tokio::task::JoinError>| {
        j.unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))
    };
    match signals.until(&mut task).await {
        Ok(done) => Stopped::Finished(joined(done)),
        Err(signal) => {
            stop.store(true, Ordering::SeqCst);
            match tokio::time::timeout(grace, task).await {
                Ok(done) => Stopped::AtSafePoint(signal, joined(done)),
                Err(_) => Stopped::Abandoned(signal),
            }
        }
    }
}

//! Restart intensity, as in OTP: a supervisor that has to restart children more than
//! `max_restarts` times within `period` gives up and fails itself, escalating to its parent.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Maximum restarts within a period (OTP `intensity` / `period`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RestartIntensity {
    /// How many restarts are tolerated within `period`.
    pub max_restarts: u32,
    /// The sliding window.
    pub period: Duration,
}

impl Default for RestartIntensity {
    /// OTP's defaults: at most 1 restart in 5 seconds.
    fn default() -> Self {
        RestartIntensity { max_restarts: 1, period: Duration::from_secs(5) }
    }
}

/// Sliding-window record of restarts for one supervisor.
#[derive(Debug)]
pub(crate) struct RestartWindow {
    policy: RestartIntensity,
    times: VecDeque<Instant>,
}

impl RestartWindow {
    pub(crate) fn new(policy: RestartIntensity) -> Self {
        RestartWindow { policy, times: VecDeque::new() }
    }

    /// Records a restart at `now`; `false` when the intensity is exceeded (escalate).
    pub(crate) fn record(&mut self, now: Instant) -> bool {
        while let Some(&t) = self.times.front() {
            if now.duration_since(t) > self.policy.period {
                self.times.pop_front();
            } else {
                break;
            }
        }
        self.times.push_back(now);
        self.times.len() <= self.policy.max_restarts as usize
    }
}

/// Renders a caught panic payload as text.
pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&'static str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic with a non-string payload".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_allows_up_to_max_then_escalates() {
        let mut w = RestartWindow::new(RestartIntensity { max_restarts: 2, period: Duration::from_secs(10) });
        let t0 = Instant::now();
        assert!(w.record(t0));
        assert!(w.record(t0 + Duration::from_secs(1)));
        assert!(!w.record(t0 + Duration::from_secs(2)), "third restart within 10 s escalates");
    }

    #[test]
    fn old_restarts_leave_the_window() {
        let mut w = RestartWindow::new(RestartIntensity::default());
        let t0 = Instant::now();
        assert!(w.record(t0));
        assert!(w.record(t0 + Duration::from_secs(6)), "first restart is outside the 5 s window");
        assert!(!w.record(t0 + Duration::from_secs(7)));
    }

    #[test]
    fn panic_payloads_render() {
        let p: Box<dyn std::any::Any + Send> = Box::new("boom");
        assert_eq!(panic_message(p.as_ref()), "boom");
        let p: Box<dyn std::any::Any + Send> = Box::new(String::from("bang"));
        assert_eq!(panic_message(p.as_ref()), "bang");
        let p: Box<dyn std::any::Any + Send> = Box::new(7u8);
        assert!(panic_message(p.as_ref()).contains("non-string"));
    }
}

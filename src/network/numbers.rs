//! The receivers the simulator plays: ten built-in test numbers (DESIGN §12) and
//! `[[network.numbers]]` from the configuration, which replace the built-in number with the same
//! address and leave the others.

use std::sync::Arc;
use std::time::Duration;

use crate::config::{NetworkConfig, NumberScript, Step};
use crate::domain::SessionStatus::{self, *};
use crate::store::{ScriptStep, millis};

/// The built-in test numbers, as DESIGN §12's table says. `tel:+12025550103` rings and is then
/// left to the no-answer timer.
pub fn builtin() -> Vec<NumberScript> {
    let number = |n: u8, steps: &[(u64, SessionStatus, Option<&str>)]| NumberScript {
        address: format!("tel:+120255501{n:02}"),
        steps: (steps.iter())
            .map(|(after_ms, status, reason)| Step {
                after_ms: *after_ms,
                status: *status,
                reason: reason.map(str::to_owned),
            })
            .collect(),
    };
    vec![
        number(0, &[(500, Ringing, None), (1500, Connected, None)]),
        number(1, &[(500, Busy, None)]),
        number(2, &[(500, Ringing, None), (1500, Declined, None)]),
        number(3, &[(500, Ringing, None)]),
        number(4, &[(500, NotReachable, None)]),
        number(5, &[(500, Failed, None)]),
        number(
            6,
            &[
                (1000, Connected, None),
                (5000, Terminated, Some("Call terminated by receiver")),
            ],
        ),
        number(
            7,
            &[
                (1000, Connected, None),
                (3000, Hold, None),
                (5000, Resume, None),
            ],
        ),
        number(
            8,
            &[
                (500, Waiting, None),
                (2000, Ringing, None),
                (3000, Connected, None),
            ],
        ),
        number(9, &[(500, InProgress, None), (2000, Connected, None)]),
    ]
}

/// The scripts in force: the built-in numbers with the configured ones in their place, then the
/// configured others, in the configuration's order; and the scale of their times.
#[derive(Debug, Clone)]
pub struct Numbers {
    scripts: Vec<NumberScript>,
    time_scale: f64,
}

impl Numbers {
    pub fn from_config(config: &NetworkConfig) -> Self {
        let mut scripts = builtin();
        for configured in &config.numbers {
            match scripts.iter_mut().find(|s| s.address == configured.address) {
                Some(builtin) => *builtin = configured.clone(),
                None => scripts.push(configured.clone()),
            }
        }
        Self {
            scripts,
            time_scale: config.time_scale,
        }
    }

    /// Every script in force.
    pub fn all(&self) -> &[NumberScript] {
        &self.scripts
    }

    /// The script of the receiver at `address`, if it is scripted.
    pub fn script(&self, address: &str) -> Option<&NumberScript> {
        self.scripts.iter().find(|s| s.address == address)
    }

    /// When `step` happens after the call is placed, with `network.time_scale`.
    pub fn due_after(&self, step: &Step) -> Duration {
        self.due_after_ms(step.after_ms)
    }

    /// `after_ms` with `network.time_scale`.
    pub fn due_after_ms(&self, after_ms: u64) -> Duration {
        scaled(Duration::from_millis(after_ms), self.time_scale)
    }

    /// The steps the simulator plays for a call to `address`, their times scaled; `None` for a
    /// receiver that is not scripted.
    pub fn plan(&self, address: &str) -> Option<Arc<[ScriptStep]>> {
        let script = self.script(address)?;
        Some(
            (script.steps.iter())
                .map(|step| ScriptStep {
                    after_ms: millis(self.due_after(step)),
                    status: step.status,
                    reason: step.reason.as_deref().map(Arc::from),
                })
                .collect(),
        )
    }
}

/// `duration` × `time_scale` (a validated, positive, finite scale).
pub fn scaled(duration: Duration, time_scale: f64) -> Duration {
    duration.mul_f64(time_scale)
}

/// The latest a step may come after the call is placed.
pub const DAY_MS: u64 = 86_400_000;

/// The most steps a script may have (a scripted number's or a call's).
pub const MAX_STEPS: usize = 32;

/// Why a script cannot be played: its steps must be moves the network may make, one after the
/// other from a new call (`Initial`), at times that never go back.
pub fn script_error(script: &NumberScript) -> Option<String> {
    let mut status = Initial;
    let mut at = 0;
    if script.steps.is_empty() {
        return Some("has no steps".into());
    }
    if script.steps.len() > MAX_STEPS {
        return Some(format!("has more than {MAX_STEPS} steps"));
    }
    for (i, step) in script.steps.iter().enumerate() {
        if step.after_ms < at {
            return Some(format!(
                "step {i} comes before the step before it (after_ms {} < {at})",
                step.after_ms
            ));
        }
        if status.network_transition(step.status).is_err() {
            return Some(format!(
                "step {i}: the network cannot move a call from {status} to {}",
                step.status
            ));
        }
        if step.after_ms > DAY_MS {
            return Some(format!(
                "step {i} comes more than a day (86400000 ms) after the call"
            ));
        }
        if (step.reason.as_deref()).is_some_and(|r| !crate::domain::is_reason(r)) {
            return Some(format!("step {i}: a reason has 1 to 256 characters"));
        }
        status = step.status;
        at = step.after_ms;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_builtin_script_is_playable() {
        let numbers = builtin();
        assert_eq!(numbers.len(), 10);
        for script in &numbers {
            assert_eq!(script_error(script), None, "{}", script.address);
        }
    }

    #[test]
    fn a_configured_number_replaces_the_builtin_one_and_leaves_the_others() {
        let mut config = crate::Config::embedded().network;
        let busy = NumberScript {
            address: "tel:+12025550100".into(),
            steps: vec![Step {
                after_ms: 100,
                status: Busy,
                reason: None,
            }],
        };
        let extra = NumberScript {
            address: "sip:robot@example.com".into(),
            steps: vec![Step {
                after_ms: 0,
                status: Connected,
                reason: None,
            }],
        };
        config.numbers = vec![busy.clone(), extra.clone()];
        config.time_scale = 0.5;
        let numbers = Numbers::from_config(&config);
        assert_eq!(numbers.all().len(), 11);
        assert_eq!(numbers.script("tel:+12025550100"), Some(&busy));
        assert_eq!(numbers.script("sip:robot@example.com"), Some(&extra));
        assert_eq!(numbers.all()[1], builtin()[1]);
        assert_eq!(numbers.due_after(&busy.steps[0]), Duration::from_millis(50));
    }

    #[test]
    fn a_script_the_network_cannot_play_is_named() {
        let script = |steps: Vec<Step>| NumberScript {
            address: "tel:+1".into(),
            steps,
        };
        let step = |after_ms, status| Step {
            after_ms,
            status,
            reason: None,
        };
        assert_eq!(script_error(&script(vec![])), Some("has no steps".into()));
        assert_eq!(
            script_error(&script(vec![step(0, Ringing); 33])),
            Some("has more than 32 steps".into())
        );
        assert_eq!(
            script_error(&script(vec![step(500, Busy), step(600, Connected)])),
            Some("step 1: the network cannot move a call from Busy to Connected".into())
        );
        assert_eq!(
            script_error(&script(vec![step(500, Ringing), step(400, Connected)])),
            Some("step 1 comes before the step before it (after_ms 400 < 500)".into())
        );
        assert_eq!(
            script_error(&script(vec![step(0, Hold)])),
            Some("step 0: the network cannot move a call from Initial to Hold".into())
        );
    }
}

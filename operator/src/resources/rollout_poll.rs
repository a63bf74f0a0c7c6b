//! How long a followed rollout waits before it is looked at again (`ecs_service`), shared with
//! the events listener, which decides it: short while nothing else will say that a rollout
//! ended, long while an events queue is read.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long to wait before looking at a rollout again when nothing else will say that it ended.
pub const ROLLOUT_POLL: Duration = Duration::from_secs(15);

/// How long to wait before the first look at a rollout the reconcile has just started
/// (CreateService, UpdateService) when nothing else will say that it ended. Short: a change
/// that starts no new task (a deployment setting, a desired count already met) is done at
/// once, and is then reported Ready 10 s sooner; a rollout that starts tasks costs one
/// DescribeServices more before the [`ROLLOUT_POLL`] cadence takes over.
pub const FIRST_LOOK: Duration = Duration::from_secs(5);

/// How long to wait before looking at a rollout again while an events queue is read. ECS puts
/// `ECS Deployment State Change` (`SERVICE_DEPLOYMENT_COMPLETED`, `SERVICE_DEPLOYMENT_FAILED`)
/// and stopped-task events on the queue, and each triggers a reconcile of the service's spec at
/// once, so this poll is only the backstop for an event that is lost or late. 60 s: a rollout
/// costs a quarter of the DescribeServices of [`ROLLOUT_POLL`] (a 5-minute rollout: 5 polls and
/// the event's look instead of 20 polls), and a lost event delays Ready by at most a minute.
pub const ROLLOUT_POLL_WITH_EVENTS: Duration = Duration::from_secs(60);

/// Which rollout poll applies: [`ROLLOUT_POLL_WITH_EVENTS`] while the events queue answers,
/// [`ROLLOUT_POLL`] otherwise (no queue, or a queue that cannot be read: polling is then all
/// there is). Shared by the events listener, which sets it, and every reconcile. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct RolloutPoll(Arc<AtomicBool>);

impl RolloutPoll {
    /// The events listener reads the queue (`true`) or cannot (`false`).
    pub fn set_events_flowing(&self, flowing: bool) {
        self.0.store(flowing, Ordering::Relaxed);
    }

    /// How long a rollout just started waits for its first look: [`FIRST_LOOK`] without a
    /// readable events queue, the events poll with one (its event says when it ended).
    pub fn first_look(&self) -> Duration {
        if self.0.load(Ordering::Relaxed) {
            ROLLOUT_POLL_WITH_EVENTS
        } else {
            FIRST_LOOK
        }
    }

    /// How long a followed rollout waits now.
    pub fn interval(&self) -> Duration {
        if self.0.load(Ordering::Relaxed) {
            ROLLOUT_POLL_WITH_EVENTS
        } else {
            ROLLOUT_POLL
        }
    }
}

/// Whether the endpoint offers ListServiceDeployments / DescribeServiceDeployments
/// (`kinds::ecs_service::deployments`), shared by every reconcile like the poll interval.
/// How long an endpoint that does not offer the service-deployment operations is left alone.
pub const REPROBE: Duration = Duration::from_secs(3600);

/// Whether the endpoint offers ListServiceDeployments / DescribeServiceDeployments: `None`
/// while it does (or was never asked), the time it last said it does not otherwise.
#[derive(Debug, Default)]
pub struct ServiceDeploymentsSupport(Mutex<Option<Instant>>);

impl ServiceDeploymentsSupport {
    pub fn offered(&self) -> bool {
        match *self.0.lock().expect("support lock") {
            Some(at) => at.elapsed() >= REPROBE,
            None => true,
        }
    }

    pub fn set_missing(&self) {
        *self.0.lock().expect("support lock") = Some(Instant::now());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rollouts_are_polled_every_minute_while_events_flow_and_every_15_s_otherwise() {
        let poll = RolloutPoll::default();
        assert_eq!(poll.interval(), ROLLOUT_POLL);
        let shared = poll.clone();
        shared.set_events_flowing(true);
        assert_eq!(poll.interval(), ROLLOUT_POLL_WITH_EVENTS);
        shared.set_events_flowing(false);
        assert_eq!(poll.interval(), Duration::from_secs(15));
    }

    #[test]
    fn a_rollout_just_started_is_first_looked_at_after_5_s_unless_events_will_say_it_ended() {
        let poll = RolloutPoll::default();
        assert_eq!(poll.first_look(), Duration::from_secs(5));
        poll.set_events_flowing(true);
        assert_eq!(poll.first_look(), ROLLOUT_POLL_WITH_EVENTS);
    }
}

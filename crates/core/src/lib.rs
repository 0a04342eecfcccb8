//! 3PlugPOS domain types and rules.
//!
//! Plain Rust with no IO: identifiers, the hybrid logical clock, device roles and the sale
//! engine's rules ([`sale`]). Every other crate builds on these; tests drive them directly.

mod clock;
mod ids;
pub mod payloads;
pub mod sale;

pub use clock::{Hlc, HlcClock};
pub use ids::{DeviceId, EventId, ParseIdError, ProductId, ShiftId, TicketId, UserId};

use serde::{Deserialize, Serialize};

/// What an appliance is: a cashier's terminal or the branch hub.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeviceRole {
    Terminal,
    Hub,
}

impl DeviceRole {
    pub fn as_str(self) -> &'static str {
        match self {
            DeviceRole::Terminal => "terminal",
            DeviceRole::Hub => "hub",
        }
    }
}

impl std::fmt::Display for DeviceRole {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for DeviceRole {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "terminal" => Ok(DeviceRole::Terminal),
            "hub" => Ok(DeviceRole::Hub),
            other => Err(format!("unknown role `{other}`: use `terminal` or `hub`")),
        }
    }
}

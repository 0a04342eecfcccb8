//! Typed identifiers. All are UUIDs; events use UUIDv7 so ids sort by creation time.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{input}` is not a valid {what} id (expected a UUID like 0190a1b2-...)")]
pub struct ParseIdError {
    what: &'static str,
    input: String,
}

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident, $what:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            /// A fresh, time-ordered id (UUIDv7).
            pub fn new_v7() -> Self {
                Self(Uuid::now_v7())
            }
            pub const fn from_bytes(bytes: [u8; 16]) -> Self {
                Self(Uuid::from_bytes(bytes))
            }
            pub const fn as_bytes(&self) -> &[u8; 16] {
                self.0.as_bytes()
            }
            pub const fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.0.fmt(f)
            }
        }

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0)
            }
        }

        impl std::str::FromStr for $name {
            type Err = ParseIdError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s.trim()).map(Self).map_err(|_| ParseIdError {
                    what: $what,
                    input: s.to_owned(),
                })
            }
        }
    };
}

uuid_id!(
    /// One appliance (terminal or hub). Origin of every event it writes.
    DeviceId,
    "device"
);
uuid_id!(
    /// A person using the system (cashier, manager, ...).
    UserId,
    "user"
);
uuid_id!(
    /// One event in the audit log.
    EventId,
    "event"
);
uuid_id!(
    /// A catalogue product; stable across renames and price changes.
    ProductId,
    "product"
);
uuid_id!(
    /// A sale ticket, from the first scan to its completion (or abandonment).
    TicketId,
    "ticket"
);
uuid_id!(
    /// A cashier's shift on one terminal, from opening float to Z report.
    ShiftId,
    "shift"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_through_text() {
        let id = DeviceId::new_v7();
        let parsed: DeviceId = id.to_string().parse().unwrap();
        assert_eq!(id, parsed);
    }

    #[test]
    fn bad_id_says_what_was_expected() {
        let err = "nope".parse::<UserId>().unwrap_err();
        assert!(err.to_string().contains("not a valid user id"));
    }

    #[test]
    fn v7_ids_sort_by_creation() {
        let a = EventId::new_v7();
        let b = EventId::new_v7();
        assert!(a < b);
    }
}

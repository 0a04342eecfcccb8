//! The rules of the first-boot form, without IO: what a branch, a device name, a hub address
//! and a one-time code must look like. The setup screen and `pos setup --provision` both check
//! through [`validate`], so a provision file and a person at the screen are held to the same
//! rules and told the same things.

use std::fmt;

use pos_core::DeviceRole;

/// Longest branch or device name: it has to fit a status bar and a report's header.
pub const MAX_LABEL: usize = 40;
/// Longest hub address (a DNS name may be 253 characters, plus the port).
pub const MAX_ADDRESS: usize = 260;
/// The port `pos hub` listens on unless its config says otherwise (`[hub] listen`), added when
/// the address is typed without one.
pub const DEFAULT_HUB_PORT: u16 = 7443;
/// Letters and digits of a one-time enrollment code (`pos hub enroll-code`).
pub const CODE_LEN: usize = 16;
/// The letters of a code: Crockford's base 32 (no I, L, O, U), as pos-sync-net makes them.
const CODE_ALPHABET: &str = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// A field of the form (and of a provision file).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FieldId {
    Branch,
    Name,
    Hub,
    Code,
}

impl FieldId {
    /// The fields a device of `role` fills in, in the order the form shows them.
    pub fn for_role(role: DeviceRole) -> &'static [FieldId] {
        match role {
            DeviceRole::Terminal => &[FieldId::Branch, FieldId::Name, FieldId::Hub, FieldId::Code],
            DeviceRole::Hub => &[FieldId::Branch, FieldId::Name],
        }
    }

    /// The key of a provision file.
    pub fn key(self) -> &'static str {
        match self {
            FieldId::Branch => "branch",
            FieldId::Name => "name",
            FieldId::Hub => "hub",
            FieldId::Code => "code",
        }
    }

    /// Position on the form (the `.slint` side's `focus` index).
    pub fn index(self) -> i32 {
        match self {
            FieldId::Branch => 0,
            FieldId::Name => 1,
            FieldId::Hub => 2,
            FieldId::Code => 3,
        }
    }

    pub fn from_index(i: i32) -> Option<FieldId> {
        [FieldId::Branch, FieldId::Name, FieldId::Hub, FieldId::Code]
            .into_iter()
            .find(|f| f.index() == i)
    }
}

impl fmt::Display for FieldId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.key())
    }
}

/// What is wrong with a value. The `Display` text is for the command line (English); the
/// screen words each problem through its message key ([`Problem::key`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    #[error("must not be empty")]
    Empty,
    #[error("is longer than {0} characters")]
    TooLong(usize),
    #[error("may hold letters, digits, spaces and - _ . only")]
    BadCharacters,
    #[error("is not a hub address: write HOST:PORT, e.g. 10.0.0.2:7443")]
    NotAnAddress,
    #[error("has no valid port: the port is a number from 1 to 65535, e.g. 10.0.0.2:7443")]
    BadPort,
    #[error("is not an enrollment code: 16 letters and digits, like 7KQ2-MX9D-4T8R-B3ZF")]
    NotACode,
}

impl Problem {
    /// The message key of `SetupTr` (ui/ui/setup/setup.slint) and its first value.
    pub fn key(&self) -> (&'static str, String) {
        match self {
            Problem::Empty => ("err-empty", String::new()),
            Problem::TooLong(n) => ("err-too-long", n.to_string()),
            Problem::BadCharacters => ("err-characters", String::new()),
            Problem::NotAnAddress => ("err-address", String::new()),
            Problem::BadPort => ("err-port", String::new()),
            Problem::NotACode => ("err-code", String::new()),
        }
    }
}

/// A field and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field} {problem}")]
pub struct FieldError {
    pub field: FieldId,
    pub problem: Problem,
}

/// What the form holds, as typed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Form {
    pub branch: String,
    pub name: String,
    pub hub: String,
    pub code: String,
}

impl Form {
    pub fn get(&self, field: FieldId) -> &str {
        match field {
            FieldId::Branch => &self.branch,
            FieldId::Name => &self.name,
            FieldId::Hub => &self.hub,
            FieldId::Code => &self.code,
        }
    }

    pub fn get_mut(&mut self, field: FieldId) -> &mut String {
        match field {
            FieldId::Branch => &mut self.branch,
            FieldId::Name => &mut self.name,
            FieldId::Hub => &mut self.hub,
            FieldId::Code => &mut self.code,
        }
    }
}

/// A checked setup: what `pos setup` carries out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub role: DeviceRole,
    pub branch: String,
    pub name: String,
    /// A terminal's hub, `host:port` (the default port added when none was typed).
    pub hub: Option<String>,
    /// A terminal's code, written as `XXXX-XXXX-XXXX-XXXX`.
    pub code: Option<String>,
}

/// Check the fields a device of `role` needs; the others are ignored. Every problem is
/// returned, in the form's order, so the screen can mark all of them at once.
pub fn validate(role: DeviceRole, form: &Form) -> Result<Request, Vec<FieldError>> {
    let mut errors = Vec::new();
    let mut take = |field: FieldId, checked: Result<String, Problem>| match checked {
        Ok(v) => Some(v),
        Err(problem) => {
            errors.push(FieldError { field, problem });
            None
        }
    };
    let branch = take(FieldId::Branch, label(&form.branch));
    let name = take(FieldId::Name, label(&form.name));
    let (hub, code) = match role {
        DeviceRole::Terminal => (
            take(FieldId::Hub, hub_address(&form.hub)),
            take(FieldId::Code, code(&form.code)),
        ),
        DeviceRole::Hub => (None, None),
    };
    match (branch, name) {
        (Some(branch), Some(name)) if errors.is_empty() => Ok(Request {
            role,
            branch,
            name,
            hub,
            code,
        }),
        _ => Err(errors),
    }
}

/// A branch or device name: trimmed, 1 to [`MAX_LABEL`] characters, letters (any script),
/// digits, spaces and `- _ .` (it ends up in file names of exports and in certificates).
pub fn label(text: &str) -> Result<String, Problem> {
    let text = text.trim();
    if text.is_empty() {
        return Err(Problem::Empty);
    }
    if text.chars().count() > MAX_LABEL {
        return Err(Problem::TooLong(MAX_LABEL));
    }
    if !text
        .chars()
        .all(|c| c.is_alphanumeric() || matches!(c, ' ' | '-' | '_' | '.'))
    {
        return Err(Problem::BadCharacters);
    }
    Ok(text.to_owned())
}

/// The hub's address: `host:port`, `host` alone (the default port is added), or `[v6]:port`.
/// The host is a name or an IP address; nothing is looked up here.
pub fn hub_address(text: &str) -> Result<String, Problem> {
    let text = text.trim();
    if text.is_empty() {
        return Err(Problem::Empty);
    }
    if text.len() > MAX_ADDRESS {
        return Err(Problem::TooLong(MAX_ADDRESS));
    }
    // A URL ("https://hub:7443") is the likeliest mistake: say it is not an address, rather
    // than that "//hub" is not a port.
    if text.contains('/') {
        return Err(Problem::NotAnAddress);
    }
    let (host, port) = if let Some(rest) = text.strip_prefix('[') {
        let (v6, after) = rest.split_once(']').ok_or(Problem::NotAnAddress)?;
        if v6.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(Problem::NotAnAddress);
        }
        match after {
            "" => (format!("[{v6}]"), None),
            p => (
                format!("[{v6}]"),
                Some(p.strip_prefix(':').ok_or(Problem::NotAnAddress)?),
            ),
        }
    } else {
        match text.split_once(':') {
            Some((_, p)) if p.contains(':') => return Err(Problem::NotAnAddress),
            Some((h, p)) => (h.to_owned(), Some(p)),
            None => (text.to_owned(), None),
        }
    };
    if !host.starts_with('[') && !is_host_name(&host) {
        return Err(Problem::NotAnAddress);
    }
    let port = match port {
        None => DEFAULT_HUB_PORT,
        Some(p) => match p.parse::<u16>() {
            Ok(n) if n > 0 => n,
            _ => return Err(Problem::BadPort),
        },
    };
    Ok(format!("{host}:{port}"))
}

/// A DNS name or a dotted IPv4 address: labels of letters, digits and inner dashes.
fn is_host_name(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
}

/// A one-time code as typed, written `XXXX-XXXX-XXXX-XXXX`: case, spaces and dashes do not
/// matter, O reads as 0 and I, L as 1 (the same reading as the hub's).
pub fn code(text: &str) -> Result<String, Problem> {
    let mut letters = String::with_capacity(CODE_LEN);
    for c in text.chars().filter(|c| *c != '-' && !c.is_whitespace()) {
        let c = match c.to_ascii_uppercase() {
            'O' => '0',
            'I' | 'L' => '1',
            c => c,
        };
        if !CODE_ALPHABET.contains(c) {
            return Err(Problem::NotACode);
        }
        letters.push(c);
    }
    if letters.is_empty() {
        return Err(Problem::Empty);
    }
    if letters.len() != CODE_LEN {
        return Err(Problem::NotACode);
    }
    let groups: Vec<&str> = (0..CODE_LEN)
        .step_by(4)
        .filter_map(|i| letters.get(i..i + 4))
        .collect();
    Ok(groups.join("-"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn till(branch: &str, name: &str, hub: &str, code: &str) -> Form {
        Form {
            branch: branch.into(),
            name: name.into(),
            hub: hub.into(),
            code: code.into(),
        }
    }

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(label("  till-1 ").unwrap(), "till-1");
        assert_eq!(label("Bäckerei Süd").unwrap(), "Bäckerei Süd");
        assert_eq!(label("   "), Err(Problem::Empty));
        assert_eq!(label(&"x".repeat(41)), Err(Problem::TooLong(MAX_LABEL)));
        assert!(label(&"x".repeat(40)).is_ok());
        assert_eq!(label("till/1"), Err(Problem::BadCharacters));
        assert_eq!(label("till\n1"), Err(Problem::BadCharacters));
    }

    #[test]
    fn hub_addresses_get_the_default_port_and_refuse_nonsense() {
        assert_eq!(hub_address("10.0.0.2:7443").unwrap(), "10.0.0.2:7443");
        assert_eq!(hub_address(" 10.0.0.2 ").unwrap(), "10.0.0.2:7443");
        assert_eq!(hub_address("hub.local:9000").unwrap(), "hub.local:9000");
        assert_eq!(hub_address("[fd00::2]:7443").unwrap(), "[fd00::2]:7443");
        assert_eq!(hub_address("[fd00::2]").unwrap(), "[fd00::2]:7443");
        assert_eq!(hub_address(""), Err(Problem::Empty));
        assert_eq!(hub_address("10.0.0.2:0"), Err(Problem::BadPort));
        assert_eq!(hub_address("10.0.0.2:99999"), Err(Problem::BadPort));
        assert_eq!(hub_address("10.0.0.2:"), Err(Problem::BadPort));
        assert_eq!(hub_address("fd00::2"), Err(Problem::NotAnAddress));
        assert_eq!(hub_address("hub local:7443"), Err(Problem::NotAnAddress));
        assert_eq!(hub_address("-hub:7443"), Err(Problem::NotAnAddress));
        assert_eq!(hub_address("http://hub"), Err(Problem::NotAnAddress));
        assert_eq!(hub_address("[nonsense]:1"), Err(Problem::NotAnAddress));
    }

    #[test]
    fn codes_read_like_the_hub_reads_them() {
        assert_eq!(code("7kq2 mx9d-4t8r-b3zf").unwrap(), "7KQ2-MX9D-4T8R-B3ZF");
        // O, I and L are read as 0 and 1, as the hub does.
        assert_eq!(code("OIL0-0000-0000-0000").unwrap(), "0110-0000-0000-0000");
        assert_eq!(code(""), Err(Problem::Empty));
        assert_eq!(code("7KQ2-MX9D-4T8R"), Err(Problem::NotACode));
        assert_eq!(code("7KQ2-MX9D-4T8R-B3ZU"), Err(Problem::NotACode));
        assert_eq!(code("7KQ2-MX9D-4T8R-B3ZF-0"), Err(Problem::NotACode));
    }

    #[test]
    fn a_till_needs_all_four_fields_and_every_problem_is_named() {
        let ok = validate(
            DeviceRole::Terminal,
            &till("main", "till-1", "10.0.0.2", "7kq2mx9d4t8rb3zf"),
        )
        .unwrap();
        assert_eq!(ok.hub.as_deref(), Some("10.0.0.2:7443"));
        assert_eq!(ok.code.as_deref(), Some("7KQ2-MX9D-4T8R-B3ZF"));
        let errors = validate(DeviceRole::Terminal, &till("", "till-1", "a b", "123")).unwrap_err();
        let fields: Vec<_> = errors.iter().map(|e| e.field).collect();
        assert_eq!(fields, [FieldId::Branch, FieldId::Hub, FieldId::Code]);
        assert_eq!(
            errors[1].to_string(),
            "hub is not a hub address: write HOST:PORT, e.g. 10.0.0.2:7443"
        );
    }

    #[test]
    fn a_hub_ignores_the_till_fields() {
        let ok = validate(DeviceRole::Hub, &till("main", "hub", "", "")).unwrap();
        assert_eq!((ok.hub, ok.code), (None, None));
        assert_eq!(FieldId::for_role(DeviceRole::Hub).len(), 2);
    }

    #[test]
    fn field_indexes_round_trip() {
        for f in FieldId::for_role(DeviceRole::Terminal) {
            assert_eq!(FieldId::from_index(f.index()), Some(*f));
        }
        assert_eq!(FieldId::from_index(9), None);
    }
}

//! MITRE ATT&CK Enterprise tactics, so rules that name a tactic by id (`TA0003`) or by name
//! (`Persistence`, `persistence`, `privilege-escalation`) land in the same matrix column.

/// (id, display name, short name), in the matrix's left-to-right order.
pub const TACTICS: &[(&str, &str, &str)] = &[
    ("TA0043", "Reconnaissance", "reconnaissance"),
    ("TA0042", "Resource Development", "resource-development"),
    ("TA0001", "Initial Access", "initial-access"),
    ("TA0002", "Execution", "execution"),
    ("TA0003", "Persistence", "persistence"),
    ("TA0004", "Privilege Escalation", "privilege-escalation"),
    ("TA0005", "Defense Evasion", "defense-evasion"),
    ("TA0006", "Credential Access", "credential-access"),
    ("TA0007", "Discovery", "discovery"),
    ("TA0008", "Lateral Movement", "lateral-movement"),
    ("TA0009", "Collection", "collection"),
    ("TA0011", "Command and Control", "command-and-control"),
    ("TA0010", "Exfiltration", "exfiltration"),
    ("TA0040", "Impact", "impact"),
];

/// Index into [`TACTICS`] for whatever spelling a rule used; `None` for unknown tactics.
pub fn tactic_index(s: &str) -> Option<usize> {
    let norm: String = s
        .trim()
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c == '_' || c == ' ' { '-' } else { c })
        .collect();
    TACTICS.iter().position(|(id, name, short)| {
        norm.eq_ignore_ascii_case(id)
            || norm == *short
            || norm == name.to_ascii_lowercase().replace(' ', "-")
    })
}

/// Is this a technique id (`T1234`, `T1234.001`)?
pub fn is_technique_id(s: &str) -> bool {
    let Some(rest) = s.strip_prefix('T') else {
        return false;
    };
    let (main, sub) = match rest.split_once('.') {
        Some((m, s)) => (m, Some(s)),
        None => (rest, None),
    };
    main.len() == 4
        && main.bytes().all(|b| b.is_ascii_digit())
        && match sub {
            None => true,
            Some(s) => s.len() == 3 && s.bytes().all(|b| b.is_ascii_digit()),
        }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spellings() {
        assert_eq!(tactic_index("TA0003"), Some(4));
        assert_eq!(tactic_index("Persistence"), Some(4));
        assert_eq!(tactic_index("privilege_escalation"), Some(5));
        assert_eq!(tactic_index("Command and Control"), Some(11));
        assert_eq!(tactic_index("nope"), None);
        assert!(is_technique_id("T1133"));
        assert!(is_technique_id("T1552.007"));
        assert!(!is_technique_id("T11"));
        assert!(!is_technique_id("T1133.x"));
    }
}

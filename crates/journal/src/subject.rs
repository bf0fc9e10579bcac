//! NATS subject filters: tokens separated by `.`, `*` matches exactly one token, `>` (only as
//! the last token) matches one or more remaining tokens. Several filters separated by spaces
//! (`orders.* fills.*`) match a subject that any of them matches (JetStream's
//! `filter_subjects`). Pure, no I/O.

use crate::JournalError;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Literal(String),
    /// `*`
    One,
    /// `>`
    Rest,
}

/// A validated subject filter such as `md.trade.*.BTCUSDT`, `orders.>`, `fills.acct1`, or
/// several of them: `orders.* fills.*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubjectFilter {
    text: String,
    alternatives: Vec<Vec<Token>>,
}

impl SubjectFilter {
    pub fn new(filter: &str) -> Result<Self, JournalError> {
        if filter.split_whitespace().count() > 1 {
            let alternatives = filter
                .split_whitespace()
                .map(|f| {
                    Self::one(f).map(|one| one.alternatives.into_iter().next().unwrap_or_default())
                })
                .collect::<Result<Vec<_>, _>>()?;
            return Ok(SubjectFilter {
                text: filter.split_whitespace().collect::<Vec<_>>().join(" "),
                alternatives,
            });
        }
        Self::one(filter.trim())
    }

    /// The filters, one by one (JetStream takes them as a list).
    pub fn parts(&self) -> impl Iterator<Item = &str> {
        self.text.split(' ')
    }

    fn one(filter: &str) -> Result<Self, JournalError> {
        let bad = |reason| JournalError::InvalidFilter {
            filter: filter.to_owned(),
            reason,
        };
        if filter.is_empty() {
            return Err(bad("must not be empty"));
        }
        if filter.chars().any(char::is_whitespace) {
            return Err(bad("must not contain whitespace"));
        }
        let parts: Vec<&str> = filter.split('.').collect();
        let mut tokens = Vec::with_capacity(parts.len());
        for (i, part) in parts.iter().enumerate() {
            let token = match *part {
                "" => return Err(bad("has an empty token")),
                "*" => Token::One,
                ">" if i + 1 == parts.len() => Token::Rest,
                ">" => return Err(bad("`>` is only allowed as the last token")),
                p if p.contains(['*', '>']) => {
                    return Err(bad("`*` and `>` must be whole tokens"));
                }
                p => Token::Literal(p.to_owned()),
            };
            tokens.push(token);
        }
        Ok(SubjectFilter {
            text: filter.to_owned(),
            alternatives: vec![tokens],
        })
    }

    /// The filter that matches every subject.
    pub fn all() -> Self {
        SubjectFilter {
            text: ">".to_owned(),
            alternatives: vec![vec![Token::Rest]],
        }
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Does the concrete `subject` match? Subjects are never wildcards themselves.
    pub fn matches(&self, subject: &str) -> bool {
        self.alternatives
            .iter()
            .any(|tokens| Self::matches_one(tokens, subject))
    }

    fn matches_one(tokens: &[Token], subject: &str) -> bool {
        let mut parts = subject.split('.');
        for token in tokens {
            match token {
                Token::Rest => return parts.next().is_some_and(|p| !p.is_empty()),
                Token::One => match parts.next() {
                    Some(p) if !p.is_empty() => {}
                    _ => return false,
                },
                Token::Literal(lit) => match parts.next() {
                    Some(p) if p == lit => {}
                    _ => return false,
                },
            }
        }
        parts.next().is_none()
    }
}

impl std::fmt::Display for SubjectFilter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

impl std::str::FromStr for SubjectFilter {
    type Err = JournalError;
    fn from_str(s: &str) -> Result<Self, JournalError> {
        SubjectFilter::new(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(filter: &str, subject: &str) -> bool {
        SubjectFilter::new(filter).unwrap().matches(subject)
    }

    #[test]
    fn literal_filters_match_exactly() {
        assert!(m("orders.acct1", "orders.acct1"));
        assert!(!m("orders.acct1", "orders.acct2"));
        assert!(!m("orders.acct1", "orders.acct1.x"));
        assert!(!m("orders.acct1", "orders"));
    }

    #[test]
    fn star_matches_exactly_one_token() {
        assert!(m("md.trade.*.BTCUSDT", "md.trade.binance.BTCUSDT"));
        assert!(!m("md.trade.*.BTCUSDT", "md.trade.binance.ETHUSDT"));
        assert!(!m("md.*", "md.trade.binance.BTCUSDT"));
        assert!(m("*.acct1", "fills.acct1"));
        assert!(!m("orders.*", "orders"));
    }

    #[test]
    fn gt_matches_one_or_more_remaining_tokens() {
        assert!(m("md.>", "md.trade.binance.BTCUSDT"));
        assert!(m("md.>", "md.quote"));
        assert!(!m("md.>", "md"));
        assert!(!m("md.>", "orders.acct1"));
        assert!(m(">", "admin.risk"));
        assert!(m("md.*.binance.>", "md.book.binance.BTCUSDT"));
    }

    #[test]
    fn several_filters_match_what_any_of_them_matches() {
        let f = SubjectFilter::new("orders.*  fills.*").unwrap();
        assert!(f.matches("orders.a") && f.matches("fills.b"));
        assert!(!f.matches("md.quote.x.y") && !f.matches("alerts.compliance"));
        assert_eq!(f.as_str(), "orders.* fills.*");
        assert_eq!(f.parts().collect::<Vec<_>>(), ["orders.*", "fills.*"]);
    }

    #[test]
    fn malformed_filters_are_refused() {
        for bad in [
            "",
            "md..trade",
            "md.>.x",
            "md.tr*",
            "md.a>",
            "md trade.",
            ".md",
            "md.",
        ] {
            assert!(
                matches!(
                    SubjectFilter::new(bad),
                    Err(JournalError::InvalidFilter { .. })
                ),
                "{bad:?} should be refused"
            );
        }
    }
}

//! What a search asks for ([`Filter`]) and the one meaning of `q=`: the words of the query as
//! the full-text index splits text, turned into an FTS5 expression for stored lines and matched
//! directly against new lines for the tail, so both answer alike.

use crate::record::{Level, Record};

/// Longest `q`, in characters.
pub const MAX_QUERY_CHARS: usize = 1024;

/// A word of `q`: the tokens it splits into (a phrase: they must follow each other), the last
/// one a prefix when the word ended in `*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Term {
    pub tokens: Vec<String>,
    pub prefix: bool,
}

/// Why `q` cannot be searched for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    #[error("q is longer than {MAX_QUERY_CHARS} characters")]
    TooLong,
}

/// The index's tokenizer (`unicode61 remove_diacritics 0`): runs of letters and digits, folded
/// to lower case; everything else separates.
pub fn tokens(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|t| !t.is_empty())
        .map(str::to_lowercase)
}

/// Parses `q`: words separated by spaces, each must occur (AND); `word*` matches any word that
/// starts with it. `order_id=42`-like words are phrases of their tokens (`order id 42`). Text
/// without letters or digits asks for nothing (no terms: every line matches).
pub fn parse_terms(q: &str) -> Result<Vec<Term>, QueryError> {
    if q.chars().count() > MAX_QUERY_CHARS {
        return Err(QueryError::TooLong);
    }
    let mut terms = Vec::new();
    for word in q.split_whitespace() {
        let prefix = word.ends_with('*');
        let toks: Vec<String> = tokens(word).collect();
        if toks.is_empty() {
            continue;
        }
        terms.push(Term {
            tokens: toks,
            prefix,
        });
    }
    Ok(terms)
}

/// The FTS5 MATCH expression of `terms`. Tokens hold only letters and digits, so quoting them
/// is all the escaping FTS5 syntax needs.
pub fn fts_expression(terms: &[Term]) -> String {
    terms
        .iter()
        .map(|t| {
            let phrase = format!("\"{}\"", t.tokens.join(" "));
            if t.prefix { phrase + " *" } else { phrase }
        })
        .collect::<Vec<_>>()
        .join(" AND ")
}

/// A column value as a phrase of the index (its tokens in order), or `None` when it has no
/// letters or digits. Every line's search text holds its order id, account and symbol, so an
/// exact filter on them can first ask the index for lines containing the phrase.
pub fn value_phrase(value: &str) -> Option<Term> {
    let tokens: Vec<String> = tokens(value).collect();
    (!tokens.is_empty()).then_some(Term {
        tokens,
        prefix: false,
    })
}

impl Filter {
    /// The full-text expression of a search: the words of `q`, the phrases of the service and
    /// the order id, the level names at or above the level (any one), and the phrases of the
    /// accounts in scope (any one). `None`: nothing the index can narrow.
    /// Lines it returns are still checked against the exact columns.
    pub fn index_expression(&self) -> Option<String> {
        let mut parts: Vec<String> = Vec::new();
        if !self.terms.is_empty() {
            parts.push(fts_expression(&self.terms));
        }
        if let Some(phrase) = self.service.as_deref().and_then(value_phrase) {
            parts.push(fts_expression(&[phrase]));
        }
        if let Some(min) = self.min_level {
            let names: Vec<String> = Level::NAMES
                .iter()
                .filter(|n| Level::parse_name(n).is_some_and(|l| l >= min))
                .map(|n| format!("\"{n}\""))
                .collect();
            parts.push(format!("({})", names.join(" OR ")));
        }
        if let Some(phrase) = self.order_id.as_deref().and_then(value_phrase) {
            parts.push(fts_expression(&[phrase]));
        }
        if let Some(accounts) = &self.accounts {
            let phrases: Option<Vec<String>> = accounts
                .iter()
                .map(|a| value_phrase(a).map(|p| fts_expression(&[p])))
                .collect();
            // An account without letters or digits cannot be looked up: no narrowing then.
            if let Some(phrases) = phrases.filter(|p| !p.is_empty()) {
                parts.push(format!("({})", phrases.join(" OR ")));
            }
        }
        (!parts.is_empty()).then(|| parts.join(" AND "))
    }
}

/// Whether `text` matches every term the way the index would.
pub fn text_matches(terms: &[Term], text: &str) -> bool {
    if terms.is_empty() {
        return true;
    }
    let toks: Vec<String> = tokens(text).collect();
    terms.iter().all(|t| phrase_in(&toks, t))
}

fn phrase_in(toks: &[String], term: &Term) -> bool {
    let n = term.tokens.len();
    if n == 0 || toks.len() < n {
        return false;
    }
    toks.windows(n).any(|w| {
        w.iter()
            .zip(&term.tokens)
            .enumerate()
            .all(|(i, (have, want))| {
                if term.prefix && i == n - 1 {
                    have.starts_with(want.as_str())
                } else {
                    have == want
                }
            })
    })
}

/// A search. Every set part must hold (AND). `accounts: Some(list)` keeps only lines whose
/// account is in the list (a line without one is left out): the caller's scope.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    pub service: Option<String>,
    /// Lines at this level or more severe.
    pub min_level: Option<Level>,
    pub terms: Vec<Term>,
    /// Unix ns, inclusive.
    pub from: Option<i64>,
    /// Unix ns, exclusive.
    pub to: Option<i64>,
    pub order_id: Option<String>,
    pub accounts: Option<Vec<String>>,
    pub symbol: Option<String>,
}

impl Filter {
    /// Whether a line matches (the tail's check; stored lines are searched in SQL to the same
    /// effect).
    pub fn matches(&self, r: &Record) -> bool {
        let ts = r.ts.as_nanos();
        self.service.as_ref().is_none_or(|s| *s == r.service)
            && self
                .min_level
                .is_none_or(|l| r.level >= l && r.level != Level::Unknown)
            && self.from.is_none_or(|f| ts >= f)
            && self.to.is_none_or(|t| ts < t)
            && self
                .order_id
                .as_ref()
                .is_none_or(|o| r.order_id.as_ref() == Some(o))
            && self
                .symbol
                .as_ref()
                .is_none_or(|s| r.symbol.as_ref() == Some(s))
            && self
                .accounts
                .as_ref()
                .is_none_or(|list| r.account.as_ref().is_some_and(|a| list.contains(a)))
            && text_matches(&self.terms, &r.search_text())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use model::Timestamp;

    fn line(message: &str) -> Record {
        Record::new(
            Timestamp::from_nanos(10),
            Level::Info,
            "gateway",
            "gateway::orders",
            message.into(),
        )
    }

    #[test]
    fn words_split_like_the_index_and_become_quoted_phrases() {
        let terms = parse_terms("Order  test_account  acc*").unwrap();
        assert_eq!(
            terms,
            vec![
                Term {
                    tokens: vec!["order".into()],
                    prefix: false
                },
                Term {
                    tokens: vec!["test".into(), "account".into()],
                    prefix: false
                },
                Term {
                    tokens: vec!["acc".into()],
                    prefix: true
                },
            ]
        );
        assert_eq!(
            fts_expression(&terms),
            r#""order" AND "test account" AND "acc" *"#
        );
    }

    #[test]
    fn fts_syntax_in_q_is_only_text() {
        let terms = parse_terms(r#"a" OR "b NEAR(c) -d ^e"#).unwrap();
        let expr = fts_expression(&terms);
        assert_eq!(expr, r#""a" AND "or" AND "b" AND "near c" AND "d" AND "e""#);
        assert_eq!(
            parse_terms("-- ** ()"),
            Ok(Vec::new()),
            "nothing to search for"
        );
        assert_eq!(parse_terms(&"x ".repeat(40)).unwrap().len(), 40);
        assert_eq!(parse_terms(&"é".repeat(1024)).unwrap().len(), 1);
        assert_eq!(parse_terms(&"x".repeat(1025)), Err(QueryError::TooLong));
    }

    #[test]
    fn exact_filters_are_narrowed_by_the_index_first() {
        let f = Filter {
            terms: parse_terms("filled").unwrap(),
            order_id: Some("ord-17".into()),
            accounts: Some(vec!["test_account".into(), "b".into()]),
            ..Filter::default()
        };
        assert_eq!(
            f.index_expression().unwrap(),
            r#""filled" AND "ord 17" AND ("test account" OR "b")"#
        );
        let by_level = Filter {
            service: Some("compliance_scanner".into()),
            min_level: Some(Level::Warn),
            ..Filter::default()
        };
        assert_eq!(
            by_level.index_expression().unwrap(),
            r#""compliance scanner" AND ("warn" OR "error")"#
        );
        let only_scope = Filter {
            accounts: Some(vec!["a".into(), "--".into()]),
            ..Filter::default()
        };
        assert_eq!(
            only_scope.index_expression(),
            None,
            "`--` has no words: scan instead"
        );
        assert_eq!(Filter::default().index_expression(), None);
    }

    #[test]
    fn the_tail_matches_phrases_prefixes_and_fields() {
        let mut r = line("Order accepted for test_account");
        r.set_field("order_id", 42.into());
        let m = |q: &str| text_matches(&parse_terms(q).unwrap(), &r.search_text());
        assert!(m("accepted"));
        assert!(m("ORDER test_account"));
        assert!(m("acc*"));
        assert!(m("42"), "fields are searchable");
        assert!(!m("account_test"), "phrase order matters");
        assert!(!m("accept"), "a whole word unless it ends in *");
        assert!(!m("accepted rejected"), "every word must occur");
    }

    #[test]
    fn filters_check_every_column_and_the_scope() {
        let mut r = line("order filled");
        r.set_field("account", "a".into());
        r.set_field("order_id", "7".into());
        let mut f = Filter {
            service: Some("gateway".into()),
            min_level: Some(Level::Info),
            from: Some(10),
            to: Some(11),
            order_id: Some("7".into()),
            accounts: Some(vec!["a".into()]),
            ..Filter::default()
        };
        assert!(f.matches(&r));
        f.accounts = Some(vec!["b".into()]);
        assert!(!f.matches(&r));
        f.accounts = None;
        f.min_level = Some(Level::Warn);
        assert!(!f.matches(&r));
        f.min_level = None;
        f.to = Some(10);
        assert!(!f.matches(&r), "to is exclusive");
        let mut unknown = line("x");
        unknown.level = Level::Unknown;
        let by_level = Filter {
            min_level: Some(Level::Trace),
            ..Filter::default()
        };
        assert!(!by_level.matches(&unknown));
        assert!(Filter::default().matches(&unknown));
        let no_account = line("x");
        let scoped = Filter {
            accounts: Some(vec!["a".into()]),
            ..Filter::default()
        };
        assert!(
            !scoped.matches(&no_account),
            "lines without an account are not in a scope"
        );
    }
}

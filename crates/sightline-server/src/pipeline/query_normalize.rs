//! Normalizes database query text (`db.query.text`, old semconv `db.statement`) so that queries
//! differing only in their literal values group together, the way APM vendors fingerprint SQL
//! (OTel semconv "Database spans" asks instrumentations to sanitize `db.query.text`, but many
//! send it raw).
//!
//! Rules, in one left-to-right scan:
//! - string literals `'…'` (with `''` escapes, and prefixed `N'…'`, `E'…'`, `X'…'`, `B'…'`),
//!   numbers (`42`, `-` stays an operator, `1.5e-3`, `.5`, `0x1F`) and the words `TRUE` /
//!   `FALSE` (any case) become `?`;
//! - comments (`-- …` to end of line, `/* … */`) count as whitespace, and every run of
//!   whitespace becomes one space (none at the start);
//! - quoted identifiers (`"…"`, `` `…` ``) and placeholders (`?`, `?1`, `$1`, `:1`) are kept;
//! - then `IN (?, ?, …)` lists collapse to `IN (?)`, so batch sizes do not split a query;
//! - the result is cut to at most [`MAX_NORMALIZED_QUERY_BYTES`], at a space when there is one.
//!
//! Backslash escapes inside strings (MySQL's `\'`) are not understood: standard SQL treats the
//! backslash as an ordinary character, and drivers bind values as parameters anyway.

/// Longest normalized query kept, in bytes. Longer ones are cut (ORMs can emit queries of
/// many kilobytes; the grouping key and the stored text stay small).
pub const MAX_NORMALIZED_QUERY_BYTES: usize = 2_048;

fn is_identifier_char(character: char) -> bool {
    character.is_alphanumeric() || character == '_' || character == '$'
}

/// The normalized form of a query (rules in the module docs). Pure and idempotent.
pub fn normalize_query(query: &str) -> String {
    let characters: Vec<char> = query.chars().collect();
    let mut output = String::with_capacity(query.len().min(4 * MAX_NORMALIZED_QUERY_BYTES));
    let mut pending_space = false;
    let mut index = 0;
    // Enough to cut the longest kept result after IN lists collapsed; the rest is never read.
    while index < characters.len() && output.len() < 4 * MAX_NORMALIZED_QUERY_BYTES {
        let character = characters[index];
        let next = characters.get(index + 1).copied();
        if character.is_whitespace() {
            pending_space = true;
            index += 1;
            continue;
        }
        if character == '-' && next == Some('-') {
            while index < characters.len() && characters[index] != '\n' {
                index += 1;
            }
            pending_space = true;
            continue;
        }
        if character == '/' && next == Some('*') {
            index += 2;
            while index < characters.len() && !(characters[index] == '*' && characters.get(index + 1) == Some(&'/')) {
                index += 1;
            }
            index = (index + 2).min(characters.len());
            pending_space = true;
            continue;
        }
        if pending_space && !output.is_empty() {
            output.push(' ');
        }
        pending_space = false;
        let previous_is_identifier = output.chars().next_back().is_some_and(is_identifier_char);
        if character == '\'' {
            index = skip_string(&characters, index);
            output.push('?');
        } else if character == '"' || character == '`' {
            let end = characters[index + 1..]
                .iter()
                .position(|&c| c == character)
                .map_or(characters.len(), |at| index + 2 + at);
            output.extend(&characters[index..end]);
            index = end;
        } else if matches!(character, '?' | '$' | ':') && next.is_some_and(|c| c.is_ascii_digit()) {
            output.push(character);
            index += 1;
            while index < characters.len() && characters[index].is_ascii_digit() {
                output.push(characters[index]);
                index += 1;
            }
        } else if !previous_is_identifier
            && (character.is_ascii_digit() || (character == '.' && next.is_some_and(|c| c.is_ascii_digit())))
        {
            index = skip_number(&characters, index);
            output.push('?');
        } else if is_identifier_char(character) {
            let start = index;
            while index < characters.len() && is_identifier_char(characters[index]) {
                index += 1;
            }
            let word: String = characters[start..index].iter().collect();
            let is_prefixed_string = characters.get(index) == Some(&'\'')
                && matches!(word.to_ascii_uppercase().as_str(), "N" | "E" | "X" | "B");
            if is_prefixed_string {
                index = skip_string(&characters, index);
                output.push('?');
            } else if word.eq_ignore_ascii_case("true") || word.eq_ignore_ascii_case("false") {
                output.push('?');
            } else {
                output.push_str(&word);
            }
        } else {
            output.push(character);
            index += 1;
        }
    }
    truncate_at_space(collapse_in_lists(&output), MAX_NORMALIZED_QUERY_BYTES)
}

/// Index after the string literal starting at `start` (a `'`); `''` is an escaped quote.
fn skip_string(characters: &[char], start: usize) -> usize {
    let mut index = start + 1;
    while index < characters.len() {
        if characters[index] == '\'' {
            if characters.get(index + 1) == Some(&'\'') {
                index += 2;
                continue;
            }
            return index + 1;
        }
        index += 1;
    }
    characters.len()
}

/// Index after the number starting at `start`: digits, letters (hex, exponents), `_` and
/// `.`, and a sign right after an exponent's `e`.
fn skip_number(characters: &[char], start: usize) -> usize {
    let mut index = start;
    while index < characters.len() {
        let character = characters[index];
        let is_number_char = character.is_ascii_alphanumeric() || character == '_' || character == '.';
        let is_exponent_sign = matches!(character, '+' | '-')
            && matches!(characters[index - 1], 'e' | 'E')
            && characters.get(index + 1).is_some_and(|c| c.is_ascii_digit());
        if !(is_number_char || is_exponent_sign) {
            break;
        }
        index += 1;
    }
    index
}

/// Rewrites `IN (?, ?, …)` (the word `IN` in any case, spaces optional) as `IN (?)`.
fn collapse_in_lists(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut output = String::with_capacity(text.len());
    let mut copied_up_to = 0;
    let mut index = 0;
    while index + 1 < bytes.len() {
        let is_in_word = bytes[index].eq_ignore_ascii_case(&b'i')
            && bytes[index + 1].eq_ignore_ascii_case(&b'n')
            && (index == 0 || !text[..index].chars().next_back().is_some_and(is_identifier_char))
            && !text[index + 2..].chars().next().is_some_and(is_identifier_char);
        if is_in_word && let Some(end) = placeholder_list_end(bytes, index + 2) {
            output.push_str(&text[copied_up_to..index + 2]);
            output.push_str(" (?)");
            copied_up_to = end;
            index = end;
            continue;
        }
        index += 1;
    }
    output.push_str(&text[copied_up_to..]);
    output
}

/// After `IN` at `start`: the index after ` (?, ?, …)` when that follows, else `None`.
fn placeholder_list_end(bytes: &[u8], start: usize) -> Option<usize> {
    let skip_space = |at: usize| if bytes.get(at) == Some(&b' ') { at + 1 } else { at };
    let mut index = skip_space(start);
    if bytes.get(index) != Some(&b'(') {
        return None;
    }
    index += 1;
    loop {
        index = skip_space(index);
        if bytes.get(index) != Some(&b'?') {
            return None;
        }
        index = skip_space(index + 1);
        match bytes.get(index) {
            Some(b',') => index += 1,
            Some(b')') => return Some(index + 1),
            _ => return None,
        }
    }
}

/// `text` cut to at most `max_bytes`, before the last space that fits (so no word is cut into
/// another word, e.g. `trueness` into `true`), or at a character boundary when none does.
fn truncate_at_space(mut text: String, max_bytes: usize) -> String {
    if text.len() <= max_bytes {
        return text;
    }
    let mut end = max_bytes;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    // `end < text.len()` here: a space right at the cut keeps every byte before it.
    if text.as_bytes()[end] != b' '
        && let Some(space) = text[..end].rfind(' ')
    {
        end = space;
    }
    text.truncate(end);
    text
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn literals_become_placeholders() {
        assert_eq!(
            normalize_query("SELECT * FROM users WHERE id = 42 AND name = 'O''Brien' AND active = TRUE"),
            "SELECT * FROM users WHERE id = ? AND name = ? AND active = ?"
        );
        assert_eq!(
            normalize_query("select a from t where x > -1.5e-3 and y = .5 and h = 0x1F"),
            "select a from t where x > -? and y = ? and h = ?"
        );
        assert_eq!(
            normalize_query("INSERT INTO t VALUES (N'a', X'00ff', e'x', false)"),
            "INSERT INTO t VALUES (?, ?, ?, ?)"
        );
        // Identifiers with digits, quoted identifiers and placeholders stay.
        assert_eq!(
            normalize_query(r#"SELECT t1.col2, "Col 3" FROM `t4` WHERE a = $1 AND b = ?2 AND c = :3 AND d = ?"#),
            r#"SELECT t1.col2, "Col 3" FROM `t4` WHERE a = $1 AND b = ?2 AND c = :3 AND d = ?"#
        );
    }

    #[test]
    fn comments_whitespace_and_in_lists_collapse() {
        assert_eq!(
            normalize_query("  SELECT *\n\tFROM t -- trailing\nWHERE id IN (1, 2,3) /* why */ OR k not in('a')"),
            "SELECT * FROM t WHERE id IN (?) OR k not in (?)"
        );
        assert_eq!(normalize_query("a IN (?, ?) and b IN ($1, $2)"), "a IN (?) and b IN ($1, $2)");
        // A comment between two minus signs must not make a new comment.
        assert_eq!(normalize_query("x -/**/-1"), "x - -?");
        assert_eq!(normalize_query("SELECT 'unterminated"), "SELECT ?");
        assert_eq!(normalize_query(""), "");
    }

    #[test]
    fn long_queries_are_cut_at_a_space() {
        let long = format!("SELECT {} FROM t", "column_name, ".repeat(500));
        let normalized = normalize_query(&long);
        assert!(normalized.len() <= MAX_NORMALIZED_QUERY_BYTES);
        assert!(normalized.ends_with("column_name,"), "{}", &normalized[normalized.len() - 20..]);
    }

    fn literal() -> impl Strategy<Value = String> {
        prop_oneof![
            any::<u32>().prop_map(|number| number.to_string()),
            (0u32..1000, 0u32..1000).prop_map(|(whole, fraction)| format!("{whole}.{fraction}")),
            "[a-zA-Z0-9 %_-]{0,12}".prop_map(|text| format!("'{text}'")),
            "[a-z]{0,5}".prop_map(|text| format!("'it''s {text}'")),
            any::<u16>().prop_map(|number| format!("0x{number:X}")),
            prop_oneof![Just("TRUE".to_owned()), Just("false".to_owned())],
        ]
    }

    /// A query template piece: fixed text, a literal slot, or an IN list of literals.
    #[derive(Debug, Clone)]
    enum Piece {
        Text(&'static str),
        Literal,
        InList,
    }

    fn template() -> impl Strategy<Value = Vec<Piece>> {
        let text = prop::sample::select(vec![
            "SELECT",
            "*",
            "FROM",
            "users",
            "u.id",
            "WHERE",
            "=",
            "AND",
            "OR",
            "(",
            ")",
            ",",
            "LIMIT",
            "t1",
            "\"Quoted Name\"",
            "-- note\n",
            "/* c */",
            "$1",
            "?",
            "<>",
            "-",
        ]);
        prop::collection::vec(
            prop_oneof![3 => text.prop_map(Piece::Text), 2 => Just(Piece::Literal), 1 => Just(Piece::InList)],
            0..30,
        )
    }

    fn render(template: &[Piece], literals: &[String], list_lengths: &[usize]) -> String {
        let mut parts = Vec::new();
        let (mut next_literal, mut next_list) = (0, 0);
        let mut take_literal = || {
            next_literal += 1;
            literals[(next_literal - 1) % literals.len()].clone()
        };
        for piece in template {
            match piece {
                Piece::Text(text) => parts.push((*text).to_owned()),
                Piece::Literal => parts.push(take_literal()),
                Piece::InList => {
                    let length = list_lengths[next_list % list_lengths.len()];
                    next_list += 1;
                    let items: Vec<String> = (0..length).map(|_| take_literal()).collect();
                    parts.push(format!("IN ({})", items.join(", ")));
                }
            }
        }
        parts.join(" ")
    }

    proptest! {
        #[test]
        fn normalizing_is_idempotent(query in "[a-zA-Z0-9_'\"`$?:.,()*/+\\- \n\té]{0,300}") {
            let once = normalize_query(&query);
            prop_assert_eq!(normalize_query(&once), once.clone());
            prop_assert!(once.len() <= MAX_NORMALIZED_QUERY_BYTES);
        }

        #[test]
        fn long_queries_stay_idempotent(words in prop::collection::vec("[a-z]{1,12}|[0-9]{1,4}|'x'|IN \\(1, 2\\)|true", 100..900)) {
            let once = normalize_query(&words.join(" "));
            prop_assert_eq!(normalize_query(&once), once.clone());
            prop_assert!(once.len() <= MAX_NORMALIZED_QUERY_BYTES);
        }

        #[test]
        fn queries_differing_only_in_literals_normalize_the_same(
            template in template(),
            left in prop::collection::vec(literal(), 1..8),
            right in prop::collection::vec(literal(), 1..8),
            left_lengths in prop::collection::vec(1usize..6, 1..4),
            right_lengths in prop::collection::vec(1usize..6, 1..4),
        ) {
            let left_query = render(&template, &left, &left_lengths);
            let right_query = render(&template, &right, &right_lengths);
            prop_assert_eq!(normalize_query(&left_query), normalize_query(&right_query), "{} | {}", left_query, right_query);
        }
    }
}

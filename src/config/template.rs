//! The syntax of `{{...}}` templates in paths, query values, headers, bodies and check values:
//! literal text and expressions, split once when the test is compiled so a request only looks up
//! names. What an expression means (variables, `uuid`, `faker.*`, ...) is the engine's business
//! (`engine::template`). A `{{` without its `}}` is literal text, as it always was.

/// One piece of a template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    Text(String),
    /// `expr` trimmed; `raw` as written with its braces, shown when the name does not resolve.
    Expr {
        expr: String,
        raw: String,
    },
}

/// A parsed template.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Template {
    parts: Vec<Part>,
}

impl Template {
    /// Splits `text` into literal text and `{{expressions}}`.
    pub fn parse(text: &str) -> Self {
        let mut parts = Vec::new();
        let mut literal = String::new();
        let mut rest = text;
        while let Some(open) = rest.find("{{") {
            let after = &rest[open + 2..];
            let Some(close) = after.find("}}") else {
                break;
            };
            literal.push_str(&rest[..open]);
            if !literal.is_empty() {
                parts.push(Part::Text(std::mem::take(&mut literal)));
            }
            parts.push(Part::Expr {
                expr: after[..close].trim().to_string(),
                raw: rest[open..open + 2 + close + 2].to_string(),
            });
            rest = &after[close + 2..];
        }
        literal.push_str(rest);
        if !literal.is_empty() {
            parts.push(Part::Text(literal));
        }
        Self { parts }
    }

    /// The pieces in order.
    pub fn parts(&self) -> &[Part] {
        &self.parts
    }

    /// The text, when nothing in it is templated.
    pub fn fixed(&self) -> Option<&str> {
        match self.parts.as_slice() {
            [] => Some(""),
            [Part::Text(t)] => Some(t),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expr(e: &str, raw: &str) -> Part {
        Part::Expr {
            expr: e.into(),
            raw: raw.into(),
        }
    }

    #[test]
    fn splits_text_and_expressions() {
        let t = Template::parse("/u/{{ id }}?v={{__VU}}");
        assert_eq!(
            t.parts(),
            [
                Part::Text("/u/".into()),
                expr("id", "{{ id }}"),
                Part::Text("?v=".into()),
                expr("__VU", "{{__VU}}"),
            ]
        );
        assert_eq!(Template::parse("/static").fixed(), Some("/static"));
        assert_eq!(Template::parse("").fixed(), Some(""));
        assert_eq!(Template::parse("a {{id").fixed(), Some("a {{id"));
        assert_eq!(
            Template::parse("{{a}} {{b").parts(),
            [expr("a", "{{a}}"), Part::Text(" {{b".into())]
        );
    }
}

//! The XPath of `xpath` checks and extractions: the subset SOAP tests use, parsed once when the test
//! is loaded and evaluated over a `roxmltree` document per response.
//!
//! Supported: absolute and relative location paths with `/` and `//`, name tests (`Name`,
//! `prefix:Name`, `*`), `text()`, `node()`, `@attr`, `.` and `..`; predicates `[n]`, `[last()]`,
//! `[path]` (exists), `[path = 'v']` / `[path != 'v']` (also on `@attr`, `text()`, `local-name()`,
//! `name()`); the functions `count(path)`, `string(path)`, `normalize-space(x)`, `concat(a, b, ...)`,
//! `local-name(path)`, `name(path)`, and string or number literals.
//!
//! Namespaces: a prefixed name must have its prefix in the check's `namespaces` map and matches
//! that namespace URI exactly; the envelope prefixes `soap`, `soapenv`, `SOAP-ENV`, `env` and `soap12`
//! need no declaration and match the SOAP 1.1 or 1.2 envelope namespace. An unprefixed name matches an element of that local name in **any**
//! namespace (so `//AddResult` finds `<AddResult xmlns="http://tempuri.org/">`, as SOAP tests
//! written for the TypeScript tool expect; XPath 1.0 proper would find nothing there).

use std::collections::BTreeMap;

/// A parsed XPath expression.
#[derive(Debug, Clone, PartialEq)]
pub struct XPath {
    expr: Expr,
}

#[derive(Debug, Clone, PartialEq)]
enum Expr {
    Path(Path),
    Literal(String),
    Number(f64),
    Call(Func, Vec<Expr>),
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Func {
    Count,
    String,
    NormalizeSpace,
    Concat,
    LocalName,
    Name,
}

#[derive(Debug, Clone, PartialEq)]
struct Path {
    absolute: bool,
    steps: Vec<Step>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Axis {
    Child,
    /// `//`: descendant-or-self, then child.
    Descendant,
    Attribute,
    SelfNode,
    Parent,
    /// Before `//@name`: the node and all its descendants.
    DescendantOrSelf,
}

#[derive(Debug, Clone, PartialEq)]
enum Test {
    /// `ns` is `None` for an unprefixed name (any namespace).
    Name {
        ns: Option<Vec<String>>,
        local: String,
    },
    Any,
    Text,
    Node,
}

#[derive(Debug, Clone, PartialEq)]
struct Step {
    axis: Axis,
    test: Test,
    preds: Vec<Pred>,
}

#[derive(Debug, Clone, PartialEq)]
enum Pred {
    Index(usize),
    Last,
    Exists(Expr),
    Compare {
        left: Expr,
        equal: bool,
        right: Expr,
    },
}

/// One item of a node-set.
#[derive(Debug, Clone, Copy)]
enum Item<'a, 'i> {
    Node(roxmltree::Node<'a, 'i>),
    Attr(roxmltree::Attribute<'a, 'i>),
}

impl Item<'_, '_> {
    fn text(&self) -> String {
        match self {
            Item::Attr(a) => a.value().to_string(),
            Item::Node(n) if n.is_text() => n.text().unwrap_or_default().to_string(),
            Item::Node(n) => n
                .descendants()
                .filter(|d| d.is_text())
                .filter_map(|d| d.text())
                .collect(),
        }
    }

    fn local_name(&self) -> String {
        match self {
            Item::Attr(a) => a.name().to_string(),
            Item::Node(n) => n.tag_name().name().to_string(),
        }
    }
}

/// What an expression evaluates to.
enum Value<'a, 'i> {
    Nodes(Vec<Item<'a, 'i>>),
    Text(String),
    Number(f64),
}

impl Value<'_, '_> {
    fn text(&self) -> Option<String> {
        match self {
            Value::Nodes(n) => n.first().map(Item::text),
            Value::Text(t) => Some(t.clone()),
            Value::Number(n) => Some(number_text(*n)),
        }
    }
}

fn number_text(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 1e15 {
        format!("{}", n as i64)
    } else {
        n.to_string()
    }
}

impl XPath {
    /// Parses `text`; prefixes resolve through `namespaces` (prefix → URI).
    pub fn parse(text: &str, namespaces: &BTreeMap<String, String>) -> Result<XPath, String> {
        let mut p = Parser {
            s: text.as_bytes(),
            text,
            at: 0,
            ns: namespaces,
        };
        let expr = p.expr()?;
        p.ws();
        if p.at < p.s.len() {
            return Err(p.err("unexpected text"));
        }
        Ok(XPath { expr })
    }

    /// The expression's value as text: the first node's string value, a function's result, or
    /// `None` when a path selects nothing.
    pub fn text(&self, doc: &roxmltree::Document) -> Option<String> {
        eval(&self.expr, Item::Node(doc.root())).text()
    }

    /// Every selected item's text (a function's value as one item); empty when nothing is selected.
    pub fn texts(&self, doc: &roxmltree::Document) -> Vec<String> {
        match eval(&self.expr, Item::Node(doc.root())) {
            Value::Nodes(n) => n.iter().map(Item::text).collect(),
            other => other.text().into_iter().collect(),
        }
    }

    /// The first selected node as XML text (as it appears in the document), or its text for an
    /// attribute, text node or function value.
    pub fn xml(&self, doc: &roxmltree::Document) -> Option<String> {
        match eval(&self.expr, Item::Node(doc.root())) {
            Value::Nodes(n) => n.first().map(|i| match i {
                Item::Node(node) if node.is_element() => doc.input_text()[node.range()].to_string(),
                other => other.text(),
            }),
            other => other.text(),
        }
    }

    /// Whether the expression selects something (or yields a non-empty value).
    pub fn exists(&self, doc: &roxmltree::Document) -> bool {
        match eval(&self.expr, Item::Node(doc.root())) {
            Value::Nodes(n) => !n.is_empty(),
            Value::Text(t) => !t.is_empty(),
            Value::Number(_) => true,
        }
    }
}

fn eval<'a, 'i>(e: &Expr, ctx: Item<'a, 'i>) -> Value<'a, 'i> {
    match e {
        Expr::Path(p) => Value::Nodes(select(p, ctx)),
        Expr::Literal(s) => Value::Text(s.clone()),
        Expr::Number(n) => Value::Number(*n),
        Expr::Call(f, args) => {
            let arg = |k: usize| args.get(k).map(|a| eval(a, ctx));
            match f {
                Func::Count => Value::Number(match arg(0) {
                    Some(Value::Nodes(n)) => n.len() as f64,
                    _ => 0.0,
                }),
                Func::String => Value::Text(
                    arg(0)
                        .map(|v| v.text().unwrap_or_default())
                        .unwrap_or_else(|| ctx.text()),
                ),
                Func::NormalizeSpace => {
                    let t = arg(0)
                        .map(|v| v.text().unwrap_or_default())
                        .unwrap_or_else(|| ctx.text());
                    Value::Text(t.split_whitespace().collect::<Vec<_>>().join(" "))
                }
                Func::Concat => Value::Text(
                    args.iter()
                        .map(|a| eval(a, ctx).text().unwrap_or_default())
                        .collect(),
                ),
                Func::LocalName | Func::Name => {
                    let item = match arg(0) {
                        Some(Value::Nodes(n)) => n.first().copied(),
                        Some(_) => None,
                        None => Some(ctx),
                    };
                    Value::Text(item.map(|i| i.local_name()).unwrap_or_default())
                }
            }
        }
    }
}

fn select<'a, 'i>(path: &Path, ctx: Item<'a, 'i>) -> Vec<Item<'a, 'i>> {
    let start = match (path.absolute, ctx) {
        (true, Item::Node(n)) => Item::Node(n.document().root()),
        (true, Item::Attr(_)) => return Vec::new(),
        (false, c) => c,
    };
    let mut set = vec![start];
    for step in &path.steps {
        let mut next: Vec<Item> = Vec::new();
        for item in &set {
            let Item::Node(node) = *item else { continue };
            // `//Name[2]` is the second `Name` child of each parent, so predicates apply per parent.
            let groups: Vec<Vec<Item>> = match step.axis {
                Axis::Child => vec![node.children().map(Item::Node).collect()],
                Axis::Descendant => node
                    .descendants()
                    .map(|d| d.children().map(Item::Node).collect())
                    .collect(),
                Axis::Attribute => vec![node.attributes().map(Item::Attr).collect()],
                Axis::SelfNode => vec![vec![Item::Node(node)]],
                Axis::DescendantOrSelf => vec![node.descendants().map(Item::Node).collect()],
                Axis::Parent => vec![node.parent().map(Item::Node).into_iter().collect()],
            };
            let mut matched = Vec::new();
            for group in groups {
                let mut group: Vec<Item> = group
                    .into_iter()
                    .filter(|c| matches(&step.test, step.axis, c))
                    .collect();
                for pred in &step.preds {
                    group = filter(group, pred);
                }
                matched.extend(group);
            }
            for m in matched {
                let dup = next.iter().any(|x| same_item(x, &m));
                if !dup {
                    next.push(m);
                }
            }
        }
        set = next;
    }
    set
}

fn filter<'a, 'i>(items: Vec<Item<'a, 'i>>, pred: &Pred) -> Vec<Item<'a, 'i>> {
    let len = items.len();
    items
        .into_iter()
        .enumerate()
        .filter(|(k, c)| match pred {
            Pred::Index(n) => k + 1 == *n,
            Pred::Last => k + 1 == len,
            Pred::Exists(e) => match eval(e, *c) {
                Value::Nodes(n) => !n.is_empty(),
                Value::Text(t) => !t.is_empty(),
                Value::Number(_) => true,
            },
            Pred::Compare { left, equal, right } => {
                let r = eval(right, *c).text().unwrap_or_default();
                let same = match eval(left, *c) {
                    Value::Nodes(n) => n.iter().any(|i| i.text() == r),
                    other => other.text().unwrap_or_default() == r,
                };
                same == *equal
            }
        })
        .map(|(_, c)| c)
        .collect()
}

fn same_item(a: &Item, b: &Item) -> bool {
    match (a, b) {
        (Item::Node(x), Item::Node(y)) => x.id() == y.id(),
        (Item::Attr(x), Item::Attr(y)) => x.range() == y.range(),
        _ => false,
    }
}

fn matches(test: &Test, axis: Axis, item: &Item) -> bool {
    match (test, item) {
        (Test::Node, Item::Node(_)) => true,
        (Test::Text, Item::Node(n)) => n.is_text(),
        (Test::Any, Item::Node(n)) => n.is_element(),
        (Test::Any, Item::Attr(_)) => axis == Axis::Attribute,
        (Test::Name { ns, local }, Item::Node(n)) => {
            n.is_element()
                && n.tag_name().name() == local
                && ns
                    .as_deref()
                    .is_none_or(|uris| uris.iter().any(|u| n.tag_name().namespace() == Some(u)))
        }
        (Test::Name { ns, local }, Item::Attr(a)) => {
            a.name() == local
                && ns
                    .as_deref()
                    .is_none_or(|uris| uris.iter().any(|u| a.namespace() == Some(u)))
        }
        _ => false,
    }
}

struct Parser<'t> {
    s: &'t [u8],
    text: &'t str,
    at: usize,
    ns: &'t BTreeMap<String, String>,
}

impl Parser<'_> {
    fn err(&self, what: &str) -> String {
        format!("XPath `{}`: {what} at offset {}", self.text, self.at)
    }

    fn ws(&mut self) {
        while self.at < self.s.len() && self.s[self.at].is_ascii_whitespace() {
            self.at += 1;
        }
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.at).copied()
    }

    fn eat(&mut self, lit: &str) -> bool {
        self.ws();
        if self.text[self.at..].starts_with(lit) {
            self.at += lit.len();
            true
        } else {
            false
        }
    }

    fn name(&mut self) -> Option<String> {
        self.ws();
        let start = self.at;
        while let Some(c) = self.peek() {
            if c.is_ascii_alphanumeric() || c == b'_' || c == b'-' || c == b'.' || c >= 0x80 {
                self.at += 1;
            } else {
                break;
            }
        }
        (self.at > start).then(|| self.text[start..self.at].to_string())
    }

    fn expr(&mut self) -> Result<Expr, String> {
        self.ws();
        match self.peek() {
            Some(q @ (b'\'' | b'"')) => {
                self.at += 1;
                let start = self.at;
                while self.peek().is_some_and(|c| c != q) {
                    self.at += 1;
                }
                if self.peek().is_none() {
                    return Err(self.err("unclosed string"));
                }
                let s = self.text[start..self.at].to_string();
                self.at += 1;
                Ok(Expr::Literal(s))
            }
            Some(c) if c.is_ascii_digit() || c == b'-' => {
                let start = self.at;
                self.at += 1;
                while self.peek().is_some_and(|c| c.is_ascii_digit() || c == b'.') {
                    self.at += 1;
                }
                self.text[start..self.at]
                    .parse()
                    .map(Expr::Number)
                    .map_err(|_| self.err("bad number"))
            }
            None => Err(self.err("expected an expression")),
            _ => {
                // A function call (not a node test such as `text()`), or a path.
                let save = self.at;
                if let Some(name) = self.name() {
                    let func = match name.as_str() {
                        "count" => Some(Func::Count),
                        "string" => Some(Func::String),
                        "normalize-space" => Some(Func::NormalizeSpace),
                        "concat" => Some(Func::Concat),
                        "local-name" => Some(Func::LocalName),
                        "name" => Some(Func::Name),
                        _ => None,
                    };
                    if self.eat("(") {
                        let Some(func) = func else {
                            if name == "text" || name == "node" || name == "last" {
                                self.at = save;
                                return self.path().map(Expr::Path);
                            }
                            return Err(self.err(&format!("function `{name}` is not supported")));
                        };
                        let mut args = Vec::new();
                        if !self.eat(")") {
                            loop {
                                args.push(self.expr()?);
                                if self.eat(")") {
                                    break;
                                }
                                if !self.eat(",") {
                                    return Err(self.err("expected `,` or `)`"));
                                }
                            }
                        }
                        return Ok(Expr::Call(func, args));
                    }
                }
                self.at = save;
                self.path().map(Expr::Path)
            }
        }
    }

    fn path(&mut self) -> Result<Path, String> {
        self.ws();
        let mut steps = Vec::new();
        let absolute = self.peek() == Some(b'/');
        let mut axis = Axis::Child;
        if absolute {
            if self.eat("//") {
                axis = Axis::Descendant;
            } else {
                self.eat("/");
                self.ws();
                if self.at == self.s.len() || matches!(self.peek(), Some(b')' | b']' | b',')) {
                    return Ok(Path { absolute, steps });
                }
            }
        }
        loop {
            self.ws();
            if axis == Axis::Descendant && self.peek() == Some(b'@') {
                // `//@id`: attributes of the node and every descendant.
                steps.push(Step {
                    axis: Axis::DescendantOrSelf,
                    test: Test::Node,
                    preds: Vec::new(),
                });
                axis = Axis::Child;
            }
            steps.push(self.step(axis)?);
            if self.eat("//") {
                axis = Axis::Descendant;
            } else if self.eat("/") {
                axis = Axis::Child;
            } else {
                break;
            }
        }
        Ok(Path { absolute, steps })
    }

    fn step(&mut self, mut axis: Axis) -> Result<Step, String> {
        self.ws();
        let test = if self.eat("..") {
            axis = Axis::Parent;
            Test::Node
        } else if self.eat(".") {
            axis = Axis::SelfNode;
            Test::Node
        } else {
            if self.eat("@") {
                axis = Axis::Attribute;
            }
            if self.eat("*") {
                Test::Any
            } else {
                let first = self.name().ok_or_else(|| self.err("expected a name"))?;
                if self.text[self.at..].starts_with(':') && !self.text[self.at..].starts_with("::")
                {
                    self.at += 1;
                    let local = self.name().ok_or_else(|| self.err("expected a name"))?;
                    let uris = match (self.ns.get(&first), first.as_str()) {
                        (Some(uri), _) => vec![uri.clone()],
                        // The envelope's usual prefixes need no declaration; either SOAP version.
                        (None, "soap" | "soapenv" | "SOAP-ENV" | "env" | "soap12") => vec![
                            "http://schemas.xmlsoap.org/soap/envelope/".to_string(),
                            "http://www.w3.org/2003/05/soap-envelope".to_string(),
                        ],
                        (None, _) => {
                            return Err(self.err(&format!(
                                "prefix `{first}` is not declared (add it to `namespaces`)"
                            )))
                        }
                    };
                    Test::Name {
                        ns: Some(uris),
                        local,
                    }
                } else if (first == "text" || first == "node") && self.eat("(") {
                    if !self.eat(")") {
                        return Err(self.err("expected `)`"));
                    }
                    if first == "text" {
                        Test::Text
                    } else {
                        Test::Node
                    }
                } else {
                    Test::Name {
                        ns: None,
                        local: first,
                    }
                }
            }
        };
        let mut preds = Vec::new();
        while self.eat("[") {
            preds.push(self.pred()?);
            if !self.eat("]") {
                return Err(self.err("expected `]`"));
            }
        }
        Ok(Step { axis, test, preds })
    }

    fn pred(&mut self) -> Result<Pred, String> {
        self.ws();
        if self.eat("last()") {
            return Ok(Pred::Last);
        }
        let left = self.expr()?;
        if let Expr::Number(n) = left {
            if n >= 1.0 && n.fract() == 0.0 {
                return Ok(Pred::Index(n as usize));
            }
            return Err(self.err("a position must be a whole number from 1"));
        }
        let equal = if self.eat("!=") {
            false
        } else if self.eat("=") {
            true
        } else {
            return Ok(Pred::Exists(left));
        };
        let right = self.expr()?;
        Ok(Pred::Compare { left, equal, right })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SOAP: &str = r#"<?xml version="1.0"?>
<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/">
  <soap:Body>
    <AddResponse xmlns="http://tempuri.org/">
      <AddResult>12</AddResult>
      <Item id="a">x</Item><Item id="b">y</Item>
    </AddResponse>
  </soap:Body>
</soap:Envelope>"#;

    fn run(expr: &str) -> Option<String> {
        let mut ns = BTreeMap::new();
        ns.insert(
            "s".into(),
            "http://schemas.xmlsoap.org/soap/envelope/".into(),
        );
        ns.insert("t".into(), "http://tempuri.org/".into());
        let doc = roxmltree::Document::parse(SOAP).unwrap();
        XPath::parse(expr, &ns).unwrap().text(&doc)
    }

    #[test]
    fn evaluates_the_subset_soap_tests_use() {
        assert_eq!(run("//AddResult/text()").as_deref(), Some("12"));
        assert_eq!(run("//AddResult").as_deref(), Some("12"));
        assert_eq!(
            run("/s:Envelope/s:Body/t:AddResponse/t:AddResult").as_deref(),
            Some("12")
        );
        assert_eq!(
            run("//s:AddResult"),
            None,
            "a prefix matches its namespace only"
        );
        assert_eq!(run("//Item[@id='b']").as_deref(), Some("y"));
        assert_eq!(run("//Item[2]/@id").as_deref(), Some("b"));
        assert_eq!(run("//Item[last()]").as_deref(), Some("y"));
        assert_eq!(run("count(//Item)").as_deref(), Some("2"));
        assert_eq!(
            run("concat(//Item[1], '-', //Item[2])").as_deref(),
            Some("x-y")
        );
        assert_eq!(
            run("local-name(//*[local-name()='AddResult']/..)").as_deref(),
            Some("AddResponse")
        );
        assert_eq!(run("//Nope"), None);
        assert_eq!(run("count(//@id)").as_deref(), Some("2"));
        assert_eq!(run("//Item/@id").as_deref(), Some("a"));
    }

    #[test]
    fn refuses_what_it_cannot_run() {
        let none = BTreeMap::new();
        for (bad, why) in [
            ("//a:B", "prefix `a` is not declared"),
            ("//B[", "expected"),
            ("substring(//B, 1)", "function `substring` is not supported"),
            ("//B[0]", "position"),
            ("'open", "unclosed string"),
        ] {
            let e = XPath::parse(bad, &none).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }
}

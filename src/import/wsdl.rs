//! WSDL 1.1 → a test: one scenario, one `soap` step per operation of the SOAP 1.1 binding, in WSDL
//! mode (`wsdl`, `operation`, `args`): at run time the engine builds each envelope and SOAPAction
//! from the same WSDL, so this importer only has to name the operations and fill in their
//! arguments. The arguments are the children of the operation's input element in the schema, each
//! given a value by its XSD type (numbers `1`, booleans `true`, strings a faker word); nested
//! complex types become nested mappings. The service's address becomes `base_url` + each step's
//! `path`, so `--base-url` points the test elsewhere while the WSDL still describes the calls.
//!
//! Read with `roxmltree` (as the engine reads WSDLs); this walk also reads the schema's element
//! sequences, which the engine does not need.

use super::{unique, Check, Generated, Global, ImportError, Load, Scenario, Step, Test};
use roxmltree::{Document, Node};
use serde_json::{json, Map, Value};
use std::collections::HashSet;

const WSDL_NS: &str = "http://schemas.xmlsoap.org/wsdl/";
const SOAP11_NS: &str = "http://schemas.xmlsoap.org/wsdl/soap/";
const XSD_NS: &str = "http://www.w3.org/2001/XMLSchema";

/// What to take from the WSDL.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Replaces the service address's origin as `base_url`.
    pub base_url: Option<String>,
    /// Keep only these operations.
    pub operations: Vec<String>,
    /// What the steps' `wsdl` says: a URL or a path relative to the generated test
    /// (default: the source file as given).
    pub wsdl: Option<String>,
}

fn is(n: &Node, ns: &str, name: &str) -> bool {
    n.is_element() && n.tag_name().namespace() == Some(ns) && n.tag_name().name() == name
}

fn local(qname: &str) -> &str {
    qname.rsplit(':').next().unwrap_or(qname)
}

/// Reads a WSDL and generates its test.
pub fn import(text: &str, source: &str, opts: &Options) -> Result<Generated, ImportError> {
    let bad = |why: String| ImportError::Source { what: "WSDL", why };
    let doc = Document::parse(text).map_err(|e| bad(format!("not XML: {e}")))?;
    let root = doc.root_element();
    if !is(&root, WSDL_NS, "definitions") {
        return Err(bad(
            "not a WSDL 1.1 document (no wsdl:definitions; WSDL 2.0 is not read)".into(),
        ));
    }
    let mut notes = Vec::new();
    // The SOAP 1.1 binding's operations, in document order.
    let binding = root
        .children()
        .find(|b| is(b, WSDL_NS, "binding") && b.children().any(|c| is(&c, SOAP11_NS, "binding")))
        .ok_or_else(|| bad("no SOAP 1.1 binding (soap:binding)".into()))?;
    let ops: Vec<String> = binding
        .children()
        .filter(|o| is(o, WSDL_NS, "operation"))
        .filter_map(|o| o.attribute("name").map(String::from))
        .filter(|n| opts.operations.is_empty() || opts.operations.contains(n))
        .collect();
    for wanted in &opts.operations {
        if !ops.contains(wanted) {
            notes.push(format!(
                "--operations: the binding has no operation `{wanted}`"
            ));
        }
    }
    if ops.is_empty() {
        return Err(ImportError::Empty(
            "no operation of the SOAP 1.1 binding matches".into(),
        ));
    }
    let address = root
        .descendants()
        .filter(|p| is(p, WSDL_NS, "port"))
        .flat_map(|p| p.children())
        .find(|a| is(a, SOAP11_NS, "address"))
        .and_then(|a| a.attribute("location"))
        .map(String::from);
    let (origin, path) = match address.as_deref().map(url::Url::parse) {
        Some(Ok(u)) => (u.origin().ascii_serialization(), u.path().to_string()),
        _ => {
            notes.push("the WSDL names no SOAP 1.1 service address: base_url is http://localhost:3000, path /; pass --base-url and edit `path`".into());
            ("http://localhost:3000".into(), "/".into())
        }
    };
    let port_type = root.children().find(|p| is(p, WSDL_NS, "portType"));
    let wsdl_ref = opts.wsdl.clone().unwrap_or_else(|| source.to_string());
    let mut names = HashSet::new();
    let mut steps = Vec::new();
    for op in &ops {
        let args = port_type
            .and_then(|pt| {
                pt.children()
                    .find(|o| is(o, WSDL_NS, "operation") && o.attribute("name") == Some(op))
            })
            .and_then(|o| o.children().find(|i| is(i, WSDL_NS, "input")))
            .and_then(|i| i.attribute("message"))
            .and_then(|m| {
                root.children()
                    .find(|x| is(x, WSDL_NS, "message") && x.attribute("name") == Some(local(m)))
            })
            .map(|m| input_args(&doc, &m))
            .unwrap_or_else(|| Value::Object(Map::new()));
        steps.push(Step {
            name: unique(op.clone(), &mut names),
            kind: "soap",
            path: Some(path.clone()),
            wsdl: Some(wsdl_ref.clone()),
            operation: Some(op.clone()),
            args: Some(args),
            checks: vec![
                Check::Status { value: 200 },
                Check::SoapFault { expected: false },
            ],
            ..Default::default()
        });
    }
    let service = root
        .children()
        .find(|s| is(s, WSDL_NS, "service"))
        .and_then(|s| s.attribute("name"))
        .unwrap_or("SOAP service")
        .to_string();
    Ok(Generated {
        header: format!(
            "Generated by `perfornium import wsdl` from {source}: one SOAP step per operation (WSDL mode:\nthe envelope and SOAPAction are built from `wsdl` at run time). Edit `args` to real values."
        ),
        test: Test {
            name: service.clone(),
            description: None,
            global: Global {
                base_url: opts.base_url.clone().unwrap_or(origin).trim_end_matches('/').to_string(),
                timeout: 30_000,
            },
            load: Load::once_each(1),
            scenarios: vec![Scenario {
                name: service,
                steps,
            }],
        },
        notes,
    })
}

/// The `args` for a message: document style (a part with `element`) gives that element's children;
/// rpc style (parts with `type`) gives one argument per part.
fn input_args(doc: &Document, message: &Node) -> Value {
    let mut out = Map::new();
    for part in message.children().filter(|p| is(p, WSDL_NS, "part")) {
        if let Some(el) = part.attribute("element") {
            if let Some(decl) = schema_element(doc, local(el)) {
                if let Value::Object(m) = children_of(doc, &decl, 0) {
                    out.extend(m);
                }
            }
        } else if let (Some(name), Some(ty)) = (part.attribute("name"), part.attribute("type")) {
            out.insert(name.to_string(), value_for_type(doc, ty, 0));
        }
    }
    Value::Object(out)
}

fn schema_element<'a>(doc: &'a Document, name: &str) -> Option<Node<'a, 'a>> {
    doc.descendants().find(|n| {
        is(n, XSD_NS, "element")
            && n.attribute("name") == Some(name)
            && n.parent().is_some_and(|p| is(&p, XSD_NS, "schema"))
    })
}

/// The mapping of an element's child elements (from its inline or named complex type).
fn children_of(doc: &Document, element: &Node, depth: usize) -> Value {
    if depth > 6 {
        return Value::Null;
    }
    let complex = element
        .children()
        .find(|c| is(c, XSD_NS, "complexType"))
        .or_else(|| {
            let ty = local(element.attribute("type")?);
            doc.descendants()
                .find(|n| is(n, XSD_NS, "complexType") && n.attribute("name") == Some(ty))
        });
    match complex {
        Some(complex) => fields(doc, complex, depth),
        None => Value::Object(Map::new()),
    }
}

/// The mapping of a complex type's own child elements (not those of types nested in it).
fn fields(doc: &Document, complex: Node, depth: usize) -> Value {
    let mut out = Map::new();
    for child in complex.descendants().filter(|c| {
        is(c, XSD_NS, "element")
            && c.ancestors().skip(1).find(|a| is(a, XSD_NS, "complexType")) == Some(complex)
    }) {
        let Some(name) = child.attribute("name") else {
            continue;
        };
        let value = match child.attribute("type") {
            Some(ty) => value_for_type(doc, ty, depth + 1),
            None => children_of(doc, &child, depth + 1),
        };
        out.insert(name.to_string(), value);
    }
    Value::Object(out)
}

/// A value for an XSD type: built-in simple types by kind, named complex types as mappings.
fn value_for_type(doc: &Document, ty: &str, depth: usize) -> Value {
    match local(ty) {
        "int" | "integer" | "long" | "short" | "byte" | "unsignedInt" | "unsignedLong"
        | "unsignedShort" | "unsignedByte" | "positiveInteger" | "nonNegativeInteger" => json!(1),
        "decimal" | "double" | "float" => json!(1.5),
        "boolean" => json!(true),
        "date" => json!("2024-01-01"),
        "dateTime" => json!("2024-01-01T00:00:00Z"),
        other => {
            let named = doc
                .descendants()
                .find(|n| is(n, XSD_NS, "complexType") && n.attribute("name") == Some(other));
            match named {
                Some(complex) if depth <= 6 => fields(doc, complex, depth),
                _ => json!("{{faker.lorem.word}}"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WSDL: &str = r#"<?xml version="1.0"?>
<definitions xmlns="http://schemas.xmlsoap.org/wsdl/" xmlns:soap="http://schemas.xmlsoap.org/wsdl/soap/"
  xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns:tns="urn:shop" targetNamespace="urn:shop">
  <types><xs:schema targetNamespace="urn:shop">
    <xs:complexType name="Address"><xs:sequence><xs:element name="city" type="xs:string"/></xs:sequence></xs:complexType>
    <xs:element name="Order"><xs:complexType><xs:sequence>
      <xs:element name="qty" type="xs:int"/><xs:element name="ship" type="tns:Address"/>
    </xs:sequence></xs:complexType></xs:element>
  </xs:schema></types>
  <message name="OrderIn"><part name="p" element="tns:Order"/></message>
  <message name="PingIn"><part name="who" type="xs:string"/></message>
  <portType name="P">
    <operation name="Order"><input message="tns:OrderIn"/></operation>
    <operation name="Ping"><input message="tns:PingIn"/></operation>
  </portType>
  <binding name="B" type="tns:P"><soap:binding transport="http://schemas.xmlsoap.org/soap/http"/>
    <operation name="Order"><soap:operation soapAction="urn:shop#Order"/></operation>
    <operation name="Ping"><soap:operation soapAction="urn:shop#Ping"/></operation>
  </binding>
  <service name="Shop"><port name="SP" binding="tns:B"><soap:address location="http://shop.test:8080/ws/shop"/></port></service>
</definitions>"#;

    #[test]
    fn one_step_per_operation_with_arguments_from_the_schema() {
        let g = import(WSDL, "shop.wsdl", &Options::default()).unwrap();
        assert_eq!(g.test.global.base_url, "http://shop.test:8080");
        let steps = &g.test.scenarios[0].steps;
        assert_eq!(steps.len(), 2);
        assert_eq!(steps[0].operation.as_deref(), Some("Order"));
        assert_eq!(steps[0].path.as_deref(), Some("/ws/shop"));
        assert_eq!(steps[0].wsdl.as_deref(), Some("shop.wsdl"));
        assert_eq!(
            steps[0].args.as_ref().unwrap(),
            &json!({"qty": 1, "ship": {"city": "{{faker.lorem.word}}"}})
        );
        assert_eq!(
            steps[1].args.as_ref().unwrap(),
            &json!({"who": "{{faker.lorem.word}}"})
        );
        let only = Options {
            operations: vec!["Ping".into(), "Nope".into()],
            ..Default::default()
        };
        let g = import(WSDL, "shop.wsdl", &only).unwrap();
        assert_eq!(g.test.scenarios[0].steps.len(), 1);
        assert!(g.notes.iter().any(|n| n.contains("`Nope`")));
        assert!(import("<a/>", "x", &Options::default()).is_err());
    }
}

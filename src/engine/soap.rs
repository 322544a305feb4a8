//! WSDL-mode SOAP steps (`type: soap` with `operation` + `args`): each WSDL is fetched once when the
//! run starts (with the load's own HTTP client), and every such step's request is filled in from it:
//! the service's SOAP 1.1 address, the operation's `SOAPAction`, and a SOAP 1.1 envelope whose body
//! is the operation's input element built from `args` (mappings become nested elements, lists
//! repeat their element, scalars are text; `{{...}}` in values is templated per request). After
//! that the step is an ordinary POST, so nothing here runs per request.
//!
//! What is read from the WSDL (1.1): `definitions/@targetNamespace`; the `portType` operation's
//! input message, whose first part's `element` (document style) or the operation name (rpc style)
//! names the body element; the SOAP 1.1 `binding` operation's `soapAction`; the schema's
//! `elementFormDefault` (qualified children share the element's namespace); and the first
//! `service/port/soap:address/@location`. A step's own `path`/`url` overrides the address.

use super::client::{Request, VuClient};
use crate::config::template::Template;
use crate::config::CompiledStep;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

const WSDL_NS: &str = "http://schemas.xmlsoap.org/wsdl/";
const SOAP11_BINDING_NS: &str = "http://schemas.xmlsoap.org/wsdl/soap/";
const XSD_NS: &str = "http://www.w3.org/2001/XMLSchema";

/// One operation as the WSDL describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operation {
    pub soap_action: String,
    /// The body element: its name, and its namespace (empty for none).
    pub element: String,
    pub namespace: String,
    /// Whether child elements are in `namespace` too (`elementFormDefault="qualified"`).
    pub qualified: bool,
    pub address: Option<String>,
}

/// A WSDL's operations by name.
#[derive(Debug, Clone, Default)]
pub struct Wsdl {
    pub operations: HashMap<String, Operation>,
}

/// Reads a WSDL 1.1 document.
pub fn parse(text: &str) -> Result<Wsdl, String> {
    let doc = roxmltree::Document::parse(text).map_err(|e| format!("not XML: {e}"))?;
    let root = doc.root_element();
    if root.tag_name().name() != "definitions" || root.tag_name().namespace() != Some(WSDL_NS) {
        return Err("not a WSDL 1.1 document (no wsdl:definitions)".into());
    }
    let tns = root.attribute("targetNamespace").unwrap_or("").to_string();
    let wsdl = |n: &roxmltree::Node, name: &str| {
        n.is_element() && n.tag_name().name() == name && n.tag_name().namespace() == Some(WSDL_NS)
    };
    let soap = |n: &roxmltree::Node, name: &str| {
        n.is_element()
            && n.tag_name().name() == name
            && n.tag_name().namespace() == Some(SOAP11_BINDING_NS)
    };
    // A QName attribute's (namespace, local name).
    let qname = |n: &roxmltree::Node, value: &str| -> (String, String) {
        match value.split_once(':') {
            Some((prefix, local)) => (
                n.lookup_namespace_uri(Some(prefix))
                    .unwrap_or_default()
                    .to_string(),
                local.to_string(),
            ),
            None => (
                n.lookup_namespace_uri(None).unwrap_or_default().to_string(),
                value.to_string(),
            ),
        }
    };
    let qualified: HashMap<String, bool> = doc
        .descendants()
        .filter(|n| n.tag_name().name() == "schema" && n.tag_name().namespace() == Some(XSD_NS))
        .map(|s| {
            (
                s.attribute("targetNamespace").unwrap_or("").to_string(),
                s.attribute("elementFormDefault") == Some("qualified"),
            )
        })
        .collect();
    let messages: HashMap<String, (String, String)> = root
        .children()
        .filter(|n| wsdl(n, "message"))
        .filter_map(|m| {
            let part = m.children().find(|p| wsdl(p, "part"))?;
            let element = part.attribute("element").map(|e| qname(&part, e));
            Some((
                m.attribute("name")?.to_string(),
                element.unwrap_or_default(),
            ))
        })
        .collect();
    // The SOAP 1.1 binding's actions and style, by operation.
    let mut actions: HashMap<String, String> = HashMap::new();
    let mut soap_ports: Vec<String> = Vec::new();
    for binding in root.children().filter(|n| wsdl(n, "binding")) {
        if !binding.children().any(|c| soap(&c, "binding")) {
            continue;
        }
        soap_ports.push(binding.attribute("name").unwrap_or("").to_string());
        for op in binding.children().filter(|n| wsdl(n, "operation")) {
            let action = op
                .children()
                .find(|c| soap(c, "operation"))
                .and_then(|c| c.attribute("soapAction"))
                .unwrap_or("");
            if let Some(name) = op.attribute("name") {
                actions
                    .entry(name.to_string())
                    .or_insert(action.to_string());
            }
        }
    }
    let address = root
        .children()
        .filter(|n| wsdl(n, "service"))
        .flat_map(|s| s.children().filter(|p| wsdl(p, "port")))
        .filter(|p| {
            p.attribute("binding")
                .map(|b| soap_ports.contains(&qname(p, b).1))
                .unwrap_or(false)
        })
        .find_map(|p| {
            p.children()
                .find(|a| soap(a, "address"))
                .and_then(|a| a.attribute("location"))
                .map(String::from)
        });
    let mut operations = HashMap::new();
    for pt in root.children().filter(|n| wsdl(n, "portType")) {
        for op in pt.children().filter(|n| wsdl(n, "operation")) {
            let Some(name) = op.attribute("name") else {
                continue;
            };
            let input = op
                .children()
                .find(|c| wsdl(c, "input"))
                .and_then(|i| i.attribute("message"))
                .map(|m| qname(&op, m).1);
            let (namespace, element) = match input.and_then(|m| messages.get(&m)) {
                Some((ns, el)) if !el.is_empty() => (ns.clone(), el.clone()),
                _ => (tns.clone(), name.to_string()),
            };
            operations.insert(
                name.to_string(),
                Operation {
                    soap_action: actions.get(name).cloned().unwrap_or_default(),
                    qualified: qualified.get(&namespace).copied().unwrap_or(false),
                    element,
                    namespace,
                    address: address.clone(),
                },
            );
        }
    }
    if operations.is_empty() {
        return Err("the WSDL has no operations".into());
    }
    Ok(Wsdl { operations })
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The SOAP 1.1 envelope calling `op` with `args`.
pub fn envelope(op: &Operation, args: &serde_json::Value) -> Result<String, String> {
    let mut body = String::new();
    let (open, child_prefix) = match (op.namespace.is_empty(), op.qualified) {
        (true, _) => (op.element.clone(), ""),
        (false, true) => (
            format!("{} xmlns=\"{}\"", op.element, escape(&op.namespace)),
            "",
        ),
        (false, false) => (
            format!("m:{} xmlns:m=\"{}\"", op.element, escape(&op.namespace)),
            "m:",
        ),
    };
    let close = if child_prefix.is_empty() {
        op.element.clone()
    } else {
        format!("m:{}", op.element)
    };
    body.push_str(&format!("<{open}>"));
    match args {
        serde_json::Value::Object(m) => {
            for (k, v) in m {
                element(&mut body, k, v)?;
            }
        }
        serde_json::Value::Null => {}
        _ => return Err("`args` must be a mapping of the operation's fields".into()),
    }
    body.push_str(&format!("</{close}>"));
    Ok(format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\
         <soap:Envelope xmlns:soap=\"http://schemas.xmlsoap.org/soap/envelope/\">\
         <soap:Body>{body}</soap:Body></soap:Envelope>"
    ))
}

fn element(out: &mut String, name: &str, v: &serde_json::Value) -> Result<(), String> {
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | ':'))
    {
        return Err(format!("`args` key `{name}` is not an XML element name"));
    }
    match v {
        serde_json::Value::Array(items) => {
            for item in items {
                element(out, name, item)?;
            }
        }
        serde_json::Value::Object(m) => {
            out.push_str(&format!("<{name}>"));
            for (k, v) in m {
                element(out, k, v)?;
            }
            out.push_str(&format!("</{name}>"));
        }
        serde_json::Value::Null => out.push_str(&format!("<{name}/>")),
        serde_json::Value::String(s) => out.push_str(&format!("<{name}>{}</{name}>", escape(s))),
        other => out.push_str(&format!("<{name}>{other}</{name}>")),
    }
    Ok(())
}

/// A template's text as written (`{{...}}` kept).
fn as_written(t: &Template) -> String {
    use crate::config::template::Part;
    t.parts()
        .iter()
        .map(|p| match p {
            Part::Text(t) => t.as_str(),
            Part::Expr { raw, .. } => raw.as_str(),
        })
        .collect()
}

/// The local name of the first element in an envelope's Body.
fn body_element(envelope: &str) -> Option<String> {
    let doc = roxmltree::Document::parse(envelope).ok()?;
    let body = doc
        .descendants()
        .find(|n| n.is_element() && n.tag_name().name() == "Body")?;
    body.children()
        .find(|c| c.is_element())
        .map(|c| c.tag_name().name().to_string())
}

/// Fetches a WSDL: over HTTP(S) with the run's client, or from a file.
async fn fetch(
    url: &str,
    tls: Arc<rustls::ClientConfig>,
    timeout: Duration,
) -> Result<String, String> {
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return std::fs::read_to_string(url).map_err(|e| format!("cannot read: {e}"));
    }
    let url = url::Url::parse(url).map_err(|e| e.to_string())?;
    let mut client = VuClient::new(tls, timeout);
    let reply = client
        .send(Request {
            method: http::Method::GET,
            url,
            headers: vec![("Accept".into(), "text/xml, application/xml".into())],
            body: None,
        })
        .await
        .map_err(|f| format!("cannot fetch: {}", f.kind()))?;
    if reply.status != 200 {
        return Err(format!("cannot fetch: status {}", reply.status));
    }
    Ok(String::from_utf8_lossy(&reply.body).into_owned())
}

/// Fills in every WSDL-mode step's request, fetching each WSDL once.
pub async fn resolve(
    steps: &mut [CompiledStep],
    tls: Arc<rustls::ClientConfig>,
    timeout: Duration,
) -> Result<(), String> {
    let mut wsdls: HashMap<String, Wsdl> = HashMap::new();
    for step in steps.iter_mut() {
        let wanted = step
            .request
            .wsdl_call
            .as_ref()
            .map(|c| c.wsdl.clone())
            .or_else(|| step.request.action_from.clone());
        if let Some(url) = wanted.filter(|u| !wsdls.contains_key(u)) {
            let text = fetch(&url, tls.clone(), timeout)
                .await
                .map_err(|e| format!("WSDL {url}: {e}"))?;
            let parsed = parse(&text).map_err(|e| format!("WSDL {url}: {e}"))?;
            wsdls.insert(url, parsed);
        }
        if let Some(url) = step.request.action_from.take() {
            // A raw envelope: the SOAPAction of the operation whose element its body holds.
            let action = step
                .request
                .body
                .as_ref()
                .and_then(|b| body_element(&as_written(b)))
                .and_then(|el| {
                    wsdls[&url]
                        .operations
                        .iter()
                        .find(|(name, op)| op.element == el || **name == el)
                        .map(|(_, op)| op.soap_action.clone())
                })
                .unwrap_or_default();
            step.request.headers.push((
                "SOAPAction".into(),
                Template::parse(&format!("\"{action}\"")),
            ));
            continue;
        }
        let Some(call) = step.request.wsdl_call.take() else {
            continue;
        };
        let wsdl = &wsdls[&call.wsdl];
        let op = wsdl.operations.get(&call.operation).ok_or_else(|| {
            let mut names: Vec<&String> = wsdl.operations.keys().collect();
            names.sort();
            format!(
                "WSDL {}: no operation `{}` (it has: {})",
                call.wsdl,
                call.operation,
                names
                    .iter()
                    .map(|n| format!("`{n}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })?;
        let request = &mut step.request;
        if request.target.fixed() == Some("") {
            let address = op.address.clone().ok_or_else(|| {
                format!(
                    "WSDL {}: no SOAP 1.1 service address (give the step a `url`)",
                    call.wsdl
                )
            })?;
            request.target = Template::parse(&address);
        }
        request.body = Some(Template::parse(&envelope(op, &call.args)?));
        request.xml_values = true;
        if !request
            .headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("soapaction"))
        {
            request.headers.push((
                "SOAPAction".into(),
                Template::parse(&format!("\"{}\"", op.soap_action)),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const WSDL: &str = r#"<?xml version="1.0"?>
<definitions xmlns="http://schemas.xmlsoap.org/wsdl/" xmlns:soap="http://schemas.xmlsoap.org/wsdl/soap/"
  xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns:tns="urn:shop" targetNamespace="urn:shop">
  <types><xs:schema targetNamespace="urn:shop"><xs:element name="Order"/></xs:schema></types>
  <message name="OrderIn"><part name="p" element="tns:Order"/></message>
  <portType name="P"><operation name="PlaceOrder"><input message="tns:OrderIn"/></operation></portType>
  <binding name="B" type="tns:P"><soap:binding transport="http://schemas.xmlsoap.org/soap/http"/>
    <operation name="PlaceOrder"><soap:operation soapAction="urn:shop#Place"/></operation></binding>
  <service name="S"><port name="SP" binding="tns:B"><soap:address location="http://shop.test/ws"/></port></service>
</definitions>"#;

    #[test]
    fn reads_the_operation_and_builds_its_envelope() {
        let w = parse(WSDL).unwrap();
        let op = &w.operations["PlaceOrder"];
        assert_eq!(op.soap_action, "urn:shop#Place");
        assert_eq!(
            (op.element.as_str(), op.namespace.as_str()),
            ("Order", "urn:shop")
        );
        assert!(
            !op.qualified,
            "no elementFormDefault: children are unqualified"
        );
        assert_eq!(op.address.as_deref(), Some("http://shop.test/ws"));
        let args =
            serde_json::json!({"item": [{"sku": "a&b"}, {"sku": "{{sku}}"}], "note": null, "n": 2});
        let env = envelope(op, &args).unwrap();
        assert!(
            env.contains(r#"<m:Order xmlns:m="urn:shop"><item><sku>a&amp;b</sku></item><item><sku>{{sku}}</sku></item><n>2</n><note/></m:Order>"#),
            "{env}"
        );
        roxmltree::Document::parse(&env).unwrap();
        assert!(envelope(op, &serde_json::json!({"a b": 1})).is_err());
        assert!(parse("<x/>").unwrap_err().contains("not a WSDL"));
    }
}

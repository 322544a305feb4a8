//! Measures the two candidate JavaScript engines for Perfornium's scripts on this machine:
//! start-up (a fresh per-VU context, then compiling a small script in it), memory per context
//! (resident-set growth over many live contexts, each holding one compiled function), and the
//! time of one call of a small function given an object argument (what a `condition` or a `custom`
//! check costs per iteration). Writes a markdown section to the file named by the first argument
//! (else stdout). Run: `cargo run --release --manifest-path bench/script-engines/Cargo.toml -- bench/results/scripting-engines.md`
use std::time::Instant;

const SCRIPT: &str = "function f(ctx) { return ctx.status === 200 && ctx.body.length > 2 && ctx.iteration >= 0; }";
const CONTEXTS: usize = 300;
const CALLS: u32 = 100_000;

fn rss_kib() -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

struct Figures {
    startup_us: f64,
    per_context_kib: f64,
    call_ns: f64,
}

fn quickjs() -> Figures {
    use rquickjs::{Context, Function, Object, Runtime};
    // start-up: runtime + context + compile, averaged over 50
    let t = Instant::now();
    for _ in 0..50 {
        let rt = Runtime::new().unwrap();
        let cx = Context::full(&rt).unwrap();
        cx.with(|c| c.eval::<(), _>(SCRIPT).unwrap());
    }
    let startup_us = t.elapsed().as_secs_f64() * 1e6 / 50.0;
    // memory
    let before = rss_kib();
    let mut keep = Vec::new();
    for _ in 0..CONTEXTS {
        let rt = Runtime::new().unwrap();
        let cx = Context::full(&rt).unwrap();
        cx.with(|c| c.eval::<(), _>(SCRIPT).unwrap());
        keep.push((rt, cx));
    }
    let per_context_kib = (rss_kib() - before) as f64 / CONTEXTS as f64;
    drop(keep);
    // call
    let rt = Runtime::new().unwrap();
    let cx = Context::full(&rt).unwrap();
    let call_ns = cx.with(|c| {
        c.eval::<(), _>(SCRIPT).unwrap();
        let f: Function = c.globals().get("f").unwrap();
        let t = Instant::now();
        let mut n = 0u32;
        for i in 0..CALLS {
            let o = Object::new(c.clone()).unwrap();
            o.set("status", 200).unwrap();
            o.set("body", "{\"ok\":true}").unwrap();
            o.set("iteration", i).unwrap();
            if f.call::<_, bool>((o,)).unwrap() {
                n += 1;
            }
        }
        assert_eq!(n, CALLS);
        t.elapsed().as_secs_f64() * 1e9 / CALLS as f64
    });
    Figures { startup_us, per_context_kib, call_ns }
}

fn boa() -> Figures {
    use boa_engine::{js_string, object::ObjectInitializer, property::Attribute, Context, JsValue, Source};
    let t = Instant::now();
    for _ in 0..50 {
        let mut c = Context::default();
        c.eval(Source::from_bytes(SCRIPT)).unwrap();
    }
    let startup_us = t.elapsed().as_secs_f64() * 1e6 / 50.0;
    let before = rss_kib();
    let mut keep = Vec::new();
    for _ in 0..CONTEXTS {
        let mut c = Context::default();
        c.eval(Source::from_bytes(SCRIPT)).unwrap();
        keep.push(c);
    }
    let per_context_kib = (rss_kib() - before) as f64 / CONTEXTS as f64;
    drop(keep);
    let mut c = Context::default();
    c.eval(Source::from_bytes(SCRIPT)).unwrap();
    let f = c.global_object().get(js_string!("f"), &mut c).unwrap();
    let f = f.as_callable().unwrap().clone();
    let t = Instant::now();
    let mut n = 0u32;
    for i in 0..CALLS {
        let o = ObjectInitializer::new(&mut c)
            .property(js_string!("status"), 200, Attribute::all())
            .property(js_string!("body"), js_string!("{\"ok\":true}"), Attribute::all())
            .property(js_string!("iteration"), i, Attribute::all())
            .build();
        if f.call(&JsValue::undefined(), &[o.into()], &mut c).unwrap().to_boolean() {
            n += 1;
        }
    }
    assert_eq!(n, CALLS);
    let call_ns = t.elapsed().as_secs_f64() * 1e9 / CALLS as f64;
    Figures { startup_us, per_context_kib, call_ns }
}

fn main() {
    let q = quickjs();
    let b = boa();
    let mut out = String::from("## Engines\n\n");
    out += &format!(
        "Written by `bench/script-engines` (release build). Script: `{SCRIPT}`. Memory: resident-set growth over {CONTEXTS} live contexts. Call: mean of {CALLS} calls, each building the argument object.\n\n"
    );
    out += "| engine | start-up (context + compile), µs | memory per context, KiB | one call, ns |\n|---|---:|---:|---:|\n";
    for (name, f) in [("rquickjs (QuickJS)", q), ("boa_engine", b)] {
        out += &format!(
            "| {name} | {:.0} | {:.0} | {:.0} |\n",
            f.startup_us, f.per_context_kib, f.call_ns
        );
    }
    match std::env::args().nth(1) {
        Some(path) => std::fs::write(path, out).unwrap(),
        None => print!("{out}"),
    }
}

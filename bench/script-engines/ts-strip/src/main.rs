//! Strips a TypeScript file's types `ROUNDS` times and prints one line of JSON: the mean time per
//! strip in µs and the length of the output. Without the `swc` feature it only reads the file
//! (the baseline build whose time and size `run.sh` subtracts).

use std::time::Instant;

#[cfg(feature = "swc")]
fn strip(src: &str) -> Result<String, String> {
    use swc_common::{errors::Handler, sync::Lrc, SourceMap, GLOBALS};
    let cm: Lrc<SourceMap> = Default::default();
    let handler = Handler::with_emitter_writer(Box::new(std::io::sink()), Some(cm.clone()));
    GLOBALS.set(&Default::default(), || {
        swc_ts_fast_strip::operate(
            &cm,
            &handler,
            src.to_string(),
            swc_ts_fast_strip::Options {
                filename: Some("sample.ts".into()),
                ..Default::default()
            },
        )
        .map(|o| o.code)
        .map_err(|e| e.to_string())
    })
}

#[cfg(not(feature = "swc"))]
fn strip(src: &str) -> Result<String, String> {
    Ok(src.to_string())
}

fn main() {
    let mut args = std::env::args().skip(1);
    let file = args.next().expect("usage: ts-strip FILE [ROUNDS]");
    let rounds: u32 = args.next().map_or(200, |r| r.parse().expect("ROUNDS"));
    let src = std::fs::read_to_string(&file).expect("read the file");
    let first = match strip(&src) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("strip failed: {e}");
            std::process::exit(1);
        }
    };
    if std::env::var_os("SHOW").is_some() {
        eprintln!("{first}");
    }
    let started = Instant::now();
    for _ in 0..rounds {
        std::hint::black_box(strip(std::hint::black_box(&src)).ok());
    }
    let us = started.elapsed().as_secs_f64() * 1e6 / f64::from(rounds);
    println!(
        "{{\"strip_us\": {us:.1}, \"in_lines\": {}, \"out_len\": {}, \"same_lines\": {}}}",
        src.lines().count(),
        first.len(),
        first.lines().count() == src.lines().count()
    );
}
